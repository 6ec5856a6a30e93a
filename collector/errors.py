"""Error responses: every failure is JSON that says what is wrong, never a traceback.

``Problem`` is raised by routes and services for expected failures (401, 413, 422…);
its body is ``{"detail": ..., "problems": [...]}``. A database that cannot be reached
(SQLAlchemy ``OperationalError``) is a 503 "database unavailable" with ``Retry-After``, so
agents keep their reports spooled and retry. Anything unexpected is logged with its
traceback on the server and answered with a plain 500 message.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.requests import ClientDisconnect

from collector.wire_validation import NotJSONError, WireError

log = logging.getLogger("classprobe.collector")


class Problem(Exception):
    """An expected failure with its HTTP status, message and the list of bad values."""

    def __init__(self, status: int, detail: str, problems: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problems = problems or []
        self.headers = headers


def wire_problem(exc: WireError, what: str) -> Problem:
    """400 for a body that is not JSON at all, 422 for JSON that does not fit the format."""
    if isinstance(exc, NotJSONError):
        return Problem(400, f"{what} is not JSON", exc.problems)
    return Problem(422, f"{what} does not fit the wire format", exc.problems)


async def _problem_response(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    body: dict[str, object] = {"detail": exc.detail}
    if exc.problems:
        body["problems"] = exc.problems
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


async def _client_gone(request: Request, _exc: Exception) -> Response:
    # Normal for speed tests: speedtest-cli cuts an upload off when its time is up.
    log.info("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def _unexpected_response(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); see the collector's log"},
        status_code=500,
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The database is down or unreachable (PostgreSQL stopped, SQLite file gone or locked):
    # a transient failure; agents keep their reports spooled and retry after Retry-After.
    log.error("database unavailable on %s %s: %s", request.method, request.url.path,
              str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return JSONResponse({"detail": "database unavailable; try again later"}, status_code=503,
                        headers={"Retry-After": "30"})


async def _broken_profile(request: Request, exc: Exception) -> JSONResponse:
    # A stored supplier profile that no longer loads (e.g. it now clashes with a new
    # built-in): say which, rather than judge without it.
    log.error("profile error on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": f"a stored profile cannot be used: {exc}"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    from collector.services.profiles import ProfileError

    app.add_exception_handler(Problem, _problem_response)
    app.add_exception_handler(ProfileError, _broken_profile)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_response)
