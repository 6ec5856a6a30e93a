"""Collector settings from arguments and ``CLASSPROBE_*`` environment variables.

No instance exists at import time: :func:`collector.app.create_app` and the CLI build one.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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

    def resolved_database_url(self) -> str:
        """The configured URL, or the SQLite file inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'classprobe.db').resolve()}"
