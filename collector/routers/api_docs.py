"""``/docs``: the OpenAPI explorer, served from the collector itself.

FastAPI's default page loads Swagger UI from a CDN, which school filters and offline
machines break; the files are vendored under ``collector/static/vendor/swagger-ui/``
(swagger-ui-dist 5.35.0, Apache-2.0, see its LICENSE and NOTICE there).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
VENDOR = "/static/vendor/swagger-ui"


@router.get("/docs", response_class=HTMLResponse)
def api_docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="classprobe collector API",
                               swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
                               swagger_css_url=f"{VENDOR}/swagger-ui.css",
                               swagger_favicon_url="/static/favicon.svg")
