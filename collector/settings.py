"""Collector settings from arguments and ``CLASSPROBE_*`` environment variables.

No instance exists at import time: :func:`collector.app.create_app` and the CLI build one.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1 << 20
GIB = 1 << 30


class Settings(BaseSettings):
    """Everything the collector needs to start; every field has a safe default."""

    model_config = SettingsConfigDict(env_prefix="CLASSPROBE_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="any SQLAlchemy URL; default: SQLite file classprobe.db inside data_dir",
    )
    data_dir: Path = Field(default=Path("./classprobe-data"))
    max_body_bytes: int = Field(default=4 * MIB, gt=0, description="report upload limit")
    max_download_bytes: int = Field(default=GIB, gt=0, description="speed-test download cap")
    max_upload_bytes: int = Field(default=GIB, gt=0, description="speed-test upload cap")
    public_url: str = Field(default="", description="the collector's address as classroom PCs "
                            "and phones reach it (room links and their QR codes)")
    secret_key: SecretStr | None = Field(
        default=None, description="signs admin session cookies; default: a random key made "
        "once and kept in the database, so every collector process on it agrees")
    notify_interval_s: float = Field(
        default=60.0, ge=0, description="how often the collector looks for verdict changes "
        "and silent agents and sends due notifications; 0 = never (no background loop)")
    smtp_host: str = Field(default="", description="mail relay for e-mail notifications; "
                           "unset = e-mail targets fail with 'SMTP not configured'")
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_from: str = Field(default="", description="From address of notification e-mail")
    smtp_starttls: bool = Field(default=True, description="upgrade the SMTP connection "
                                "with STARTTLS before sending (or logging in)")
    smtp_user: str = Field(default="", description="SMTP login (optional)")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    agent_rate_per_minute: int = Field(
        default=120, gt=0, description="requests per minute each agent may make to "
        "POST /api/v1/reports, and as many to GET /api/v1/agent/control (a token bucket per "
        "agent and endpoint, per collector process; over it: 429 with Retry-After)")
    ingest_concurrency: int = Field(
        default=1, gt=0, description="groups of uploads each collector process writes at "
        "once; uploads that arrive meanwhile wait, and the next free writer takes them "
        "all as one group, written in one transaction (one writer makes the largest "
        "groups: the load benchmark's fastest)")
    ingest_group_reports: int = Field(
        default=400, gt=0, description="at most this many reports in a group of uploads "
        "written in one transaction (an upload larger than that is written alone)")
    gc_young_threshold: int = Field(
        default=10_000, ge=0, description="a serving collector process freezes its start-up "
        "objects and runs Python's young garbage collection every this many net new "
        "objects (Python's default: 700, which cost ~16 % of the CPU under load); "
        "0 = leave Python's GC as it is (collector/gc_tuning.py)")
    metrics_token: SecretStr | None = Field(
        default=None, description="when set, GET /metrics needs 'Authorization: Bearer "
        "<token>'; unset or empty = open (the collector binds 127.0.0.1 by default)")

    def resolved_database_url(self) -> str:
        """The configured URL, or the SQLite file inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'classprobe.db').resolve()}"
