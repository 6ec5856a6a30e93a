"""Every (method, path) the collector app serves, however FastAPI keeps its routes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.routing import Mount


def _expand(route: Any) -> Iterable[tuple[str, str]]:
    if isinstance(route, Mount):
        yield "MOUNT", route.path
        return
    path, methods = getattr(route, "path", None), getattr(route, "methods", None)
    if isinstance(path, str) and methods:
        for method in methods:
            if method != "HEAD":
                yield method, path
        return
    candidates = getattr(route, "effective_candidates", None)  # FastAPI >= 0.165 routers
    low = getattr(route, "effective_low_priority_routes", None)
    if candidates is None:
        raise AssertionError(f"cannot list the paths of route {route!r}")
    inner = list(candidates()) + (list(low()) if low is not None else [])
    for sub in inner:
        yield from _expand(sub)


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """``{(method, path template)}``; a static mount is ``("MOUNT", "/static")``."""
    return {pair for route in app.routes for pair in _expand(route)}
