"""HTML rendering with Jinja2 (autoescaped), shared by the pages and ``report --format html``."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from collector.services.site_report import SiteReport
from collector.services.sites import SiteSummary

TEMPLATES = Path(__file__).resolve().parent / "templates"


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def fmt_num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["time"] = fmt_time
    env.filters["num"] = fmt_num
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def render_site_report(report: SiteReport) -> str:
    return render("site_report.html", report=report)


def render_index(sites: list[SiteSummary]) -> str:
    return render("index.html", sites=sites)
