"""HTML rendering with Jinja2 (autoescaped), shared by the pages and ``report --format html``."""

from __future__ import annotations

import shlex
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from collector.services.report_provenance import Provenance
from collector.services.site_report import SiteReport
from collector.services.sites import SiteSummary
from collector.web_auth import csrf_input

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def fmt_num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def path_part(value: object) -> str:
    """One URL path segment: everything but unreserved characters escaped, ``/`` too."""
    return quote(str(value), safe="")


@cache
def stylesheet() -> str:
    """The pages' stylesheet, for documents that must stand alone (no ``/static``)."""
    return (STATIC / "classprobe.css").read_text(encoding="utf-8")


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["time"] = fmt_time
    env.filters["num"] = fmt_num
    env.filters["pathpart"] = path_part
    env.filters["shell"] = shlex.quote  # a name inside a suggested command line
    env.globals["csrf_input"] = csrf_input  # {{ csrf_input(session) }} in POST forms
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def render_site_report(report: SiteReport, provenance: Provenance | None = None,
                       **context: Any) -> str:
    """The printable report as one self-contained document (its styles inline, no
    script), the same for the page, ``?format=html`` and ``report --format html``.
    ``provenance`` (:func:`collector.services.report_provenance.provenance_for`) adds the
    methods used and the measurement window; ``context`` e.g. the page's ``session``."""
    return render("site_report.html", report=report, provenance=provenance,
                  standalone_css=stylesheet(), **context)


def render_index(sites: list[SiteSummary]) -> str:
    return render("index.html", sites=sites)
