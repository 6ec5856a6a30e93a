"""The collector's FastAPI application, built by :func:`create_app`.

Nothing happens at import time: the engine, the tables, the profiles and the random block
for speed tests are made inside the factory and kept on ``app.state``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from collector.db import init_db, make_engine
from collector.errors import install_error_handlers
from collector.gc_tuning import tune_for_serving
from collector.render import STATIC
from collector.routers import (
    api_docs,
    auth,
    campaigns,
    control,
    enrol,
    flags,
    fleet,
    metrics,
    pages,
    profiles,
    reports,
    room_tests,
    share,
    sites,
    speed,
    speedtest_mini,
    timetable,
    ui,
)
from collector.services.notify_loop import notify_lifespan
from collector.services.profiles import load_profiles
from collector.settings import Settings
from collector.streaming import new_random_block

ROUTERS = (api_docs.router, enrol.router, reports.router,
           profiles.router,  # before sites.router, whose older GET /api/v1/profiles it replaces
           sites.router, speed.router, speedtest_mini.router,
           pages.router,
           auth.router,  # /login, /logout (collector.web_auth: admin sessions)
           timetable.router, control.router, fleet.router,
           room_tests.router, flags.router, campaigns.router,
           metrics.router,  # /metrics (Prometheus)
           share.router,  # /share/{token}, signed reports, /sites/{site}/share
           ui.router)  # site, room (timeline), device and compare pages


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="classprobe collector",
        summary="Stores classroom measurements, judges them against requirement profiles, "
                "and serves as an on-net speed-test server.",
        version="0.1.0",
        lifespan=notify_lifespan,  # notifications: detect + deliver every interval
        docs_url=None, redoc_url=None,  # /docs is served from /static: no CDN (api_docs)
    )
    engine = make_engine(settings.resolved_database_url())
    init_db(engine)
    app.state.settings = settings
    app.state.engine = engine
    app.state.profiles = load_profiles()
    app.state.random_block = new_random_block()
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")  # uPlot, CSS, JS
    return app


def app_from_env() -> FastAPI:
    """The app with settings from ``CLASSPROBE_*`` only: for several uvicorn workers,
    ``uvicorn collector.app:app_from_env --factory --workers N``."""
    return serving_app(Settings())


def serving_app(settings: Settings) -> FastAPI:
    """The app for a process that serves it (``collector serve``, each uvicorn worker of
    :func:`app_from_env`): built, then the process's GC tuned (:mod:`collector.gc_tuning`).
    :func:`create_app` alone leaves the GC of tests and embedders as it was."""
    app = create_app(settings)
    tune_for_serving(settings.gc_young_threshold)
    return app
