"""Database tables.

Nothing identifying a person or a machine is stored: no hostnames, user names or MAC
addresses. Agents are random UUIDs; enrolment tokens and credentials are stored only as
SHA-256 digests (see :mod:`collector.security`). Times are stored in UTC and come back
timezone-aware on every backend (:class:`UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import AutoString, Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Site(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    salt: str = Field(default="", max_length=64)
    """Key for hashing SSIDs/BSSIDs, handed to agents at enrolment (not a secret of users:
    it stops a hash from being looked up in a table of common SSIDs)."""


class Room(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_room_site_name"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    name: str = Field(max_length=100)
    flag_key: str | None = Field(default=None, unique=True, index=True, max_length=64)
    """Unguessable key of the room's no-login "report a problem" page (its QR code)."""


class Agent(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=36)  # random UUID, made by the collector
    site_id: int = Field(foreign_key="site.id", index=True)
    room_id: int = Field(foreign_key="room.id", index=True)
    credential_hash: str = Field(unique=True, index=True, max_length=64)
    revoked: bool = False
    agent_version: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    clock_offset_s: float | None = None
    """Collector clock minus agent clock, as the agent last measured it."""


BIG_ID = BigInteger().with_variant(Integer(), "sqlite")
"""Ids of the tables that grow with every upload (revision 0006): 64-bit on PostgreSQL;
SQLite's INTEGER already is, and only an ``INTEGER PRIMARY KEY`` is its rowid."""


def bytewise(length: int | None = None) -> TypeEngine[str]:
    """Machine-made text (catalogue names, targets) compared byte by byte on PostgreSQL
    (``COLLATE "C"``, revision 0007). A column in the covering readiness index is compared
    at every level of every insert's descent into it; with the database's own collation
    each comparison goes through the C library's ``strcoll`` (a multi-level linguistic
    comparison under a locale such as ``en_US.UTF-8``). Byte order is Python's string
    order, and SQLite's."""
    return AutoString(length).with_variant(String(length, collation="C"), "postgresql")


class Report(SQLModel, table=True):
    __table_args__ = (Index("ix_report_room_test", "id", postgresql_where=text("trigger = 'job'"),
                            sqlite_where=text("trigger = 'job'")),
                      Index("ix_report_agent_created", "agent_id", "created_at"))
    """The few coordinated room tests' reports (partial index): readiness leaves their
    rows out (:mod:`collector.services.sample_query`) without scanning every report. An
    agent's reports newest first (the site report's latest cycle, revision 0005)."""

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    report_id: str = Field(unique=True, index=True, max_length=36)  # agent-made UUID
    agent_id: str = Field(foreign_key="agent.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)
    schema_version: int
    agent_version: str = ""
    spool_dropped: int = 0
    trigger: str = Field(default="manual", max_length=10)
    job_id: str | None = Field(default=None, index=True, max_length=36)
    clock_offset_s: float | None = None


class ProbeRun(SQLModel, table=True):
    __table_args__ = (Index("ix_proberun_status_finished", "status", "finished_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    report_pk: int = Field(index=True, sa_type=BIG_ID)
    """``report.id``; no foreign key (revision 0004): ingest, the only writer, takes it from
    the report row it has just written, and nothing is deleted."""
    probe: str
    target: str | None = None
    status: str = Field(max_length=10)
    reason: str | None = None
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime = Field(sa_type=UTCDateTime)


class Measurement(SQLModel, table=True):
    """One value; agent, site, room, time, probe and target are copied for fast queries."""

    __table_args__ = (
        Index("ix_measurement_room_time", "room_id", "time"),
        Index("ix_measurement_site_metric_stat_target", "site_id", "metric", "stat", "target",
              "time", postgresql_include=["unit", "in_lesson", "agent_id", "room_id", "period",
                                          "value", "report_pk"]),
    )
    """The rows SQLite keeps, one per value. On PostgreSQL (revision 0008) this is a view
    of the same rows over ``measurement_run``, one row per probe run with the values as
    arrays (:mod:`collector.measurement_runs`): these indexes are SQLite's, and ingest and
    readiness use the runs' own there.

    The last index serves readiness on SQLite (:mod:`collector.services.sample_query`):
    the distinct targets of a (metric, stat) by a loose index scan, then each group's
    samples by an index range.

    The five id columns have no foreign keys (revision 0002): ingest, the only writer,
    takes ``report_pk``/``probe_run_id`` from the rows it inserts in the same transaction
    and agent, site and room from the authenticated agent, and nothing is ever deleted.
    On PostgreSQL the five per-row key checks (each a locking look-up in the parent) were
    more than half the database's CPU per upload: 34 -> 14 ms for a batch of 564
    measurements (``benchmarks/load.py``, docs/deploy-collector.md).

    Every index costs every upload, so there are five (revision 0004): the primary key,
    ``report_pk``, ``agent_id``, ``(room_id, time)`` and the covering one above. A probe
    run's values are read by ``report_pk`` *and* ``probe_run_id`` (the first finds them)."""

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    report_pk: int = Field(index=True, sa_type=BIG_ID)
    """``report.id`` of the report it came in."""
    probe_run_id: int = Field(sa_type=BIG_ID)
    """``proberun.id`` of the probe run that measured it."""
    agent_id: str = Field(index=True)
    site_id: int
    room_id: int
    time: datetime = Field(sa_type=UTCDateTime)  # when the probe run started
    probe: str
    target: str | None = Field(default=None, sa_type=bytewise())
    metric: str = Field(max_length=64, sa_type=bytewise(64))
    value: float | None = None
    text: str | None = None
    unit: str = Field(max_length=16)
    method: str
    stat: str = Field(max_length=10, sa_type=bytewise(10))
    samples: int = 1
    period: str | None = Field(default=None, max_length=40)
    """The timetable period the measurement fell in (None: outside any period, or the
    site has no timetable); set at ingest from the site's timetable."""
    in_lesson: bool | None = None
    """True in a period, False outside, None when the site has no timetable."""


class Timetable(SQLModel, table=True):
    """A site's timetable, the :mod:`agent.timetable` document as JSON."""

    site_id: int = Field(foreign_key="site.id", primary_key=True)
    document: str
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Job(SQLModel, table=True):
    """A coordinated room test or a measurement burst (see :class:`agent.wire.Job`)."""

    __table_args__ = (Index("ix_job_room_start", "room_id", "start_at"),)

    id: str = Field(primary_key=True, max_length=36)
    site_id: int = Field(foreign_key="site.id", index=True)
    room_id: int = Field(foreign_key="room.id")
    kind: str = Field(max_length=10)
    start_at: datetime = Field(sa_type=UTCDateTime)
    duration_s: float = 0.0
    directions: str = ""  # comma-separated: download,upload
    download_url: str | None = None
    upload_url: str | None = None
    streams: int = 4
    reason: str | None = None
    flag_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expected_agents: list[str] | None = Field(default=None, sa_type=JSON)
    """Room test: the room's agents that were live when the test was made (the ones whose
    results the test waits for); None for bursts."""


class Flag(SQLModel, table=True):
    """A problem reported in a room by a teacher or technician (no name is stored)."""

    __table_args__ = (Index("ix_flag_room_created", "room_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=36)
    site_id: int = Field(foreign_key="site.id", index=True)
    room_id: int = Field(foreign_key="room.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", max_length=500)
    source: str = Field(max_length=10)  # agent | web
    agent_id: str | None = Field(default=None, foreign_key="agent.id")
    job_id: str | None = Field(default=None, max_length=36)
    """The burst that measures this moment (made for this flag, or one made moments ago)."""


class AdminKey(SQLModel, table=True):
    """An administrator API key (stored only as its SHA-256)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    key_hash: str = Field(unique=True, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked: bool = False


class Campaign(SQLModel, table=True):
    """A named assessment of a site: the profiles it judges and its time window.

    The window is half-open, ``[start_at, end_at)``; ``profiles`` is the comma-separated
    profile ids (see :mod:`collector.services.campaigns`).
    """

    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_campaign_site_name"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    name: str = Field(max_length=100)
    profiles: str = Field(max_length=1000)
    start_at: datetime = Field(sa_type=UTCDateTime)
    end_at: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StoredProfile(SQLModel, table=True):
    """A supplier's requirement profile added through the API or the CLI.

    ``document`` is the TOML text as sent (validated by
    :func:`collector.services.profiles.profile_from_toml` before it is stored); ``id`` is
    the profile's own id, so a profile id names one profile across built-ins and suppliers.
    """

    id: str = Field(primary_key=True, max_length=100)
    version: str = Field(max_length=50)
    document: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ServerSecret(SQLModel, table=True):
    """A random server secret made once and shared by every collector process
    (:func:`collector.services.secrets.server_secret`); ``value`` is base64."""

    name: str = Field(primary_key=True, max_length=50)
    value: str = Field(max_length=10000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AdminUser(SQLModel, table=True):
    """A person who may log in to the web pages; ``password_hash`` is
    ``scrypt$n$r$p$salt_b64$hash_b64`` (:mod:`collector.services.users`), never the password."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=100)
    password_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled: bool = False


class AdminLogin(SQLModel, table=True):
    """One logged-in browser session: its random id is in the signed cookie and only its
    SHA-256 is kept here, so logout and disabling a user end it on the next request."""

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="adminuser.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NotifyTarget(SQLModel, table=True):
    """Where a site's notifications go (:mod:`collector.services.notify`): a webhook URL
    (each POST signed with ``secret``) or an e-mail address; ``events`` is the comma list
    of the events it wants (verdict_changed, agent_silent, flag_raised)."""

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    kind: str = Field(max_length=10)  # webhook | email
    url_or_address: str = Field(max_length=2000)
    secret: str = Field(default="", max_length=200)
    events: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled: bool = False


class Notification(SQLModel, table=True):
    """The outbox (:mod:`collector.services.delivery`): pending while ``next_attempt_at``
    is set and ``delivered_at`` is not; given up when neither is set (``last_error`` says
    why)."""

    __table_args__ = (Index("ix_notification_due", "delivered_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="notifytarget.id", index=True)
    event: str = Field(max_length=20)
    payload: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)


class VerdictState(SQLModel, table=True):
    """A profile's last seen overall verdict in a site, to notice when it changes."""

    site_id: int = Field(foreign_key="site.id", primary_key=True)
    profile_id: str = Field(primary_key=True, max_length=100)
    status: str = Field(max_length=10)
    changed_at: datetime = Field(sa_type=UTCDateTime)


class SilentAgent(SQLModel, table=True):
    """An agent already reported silent: one silence, one notification. The row goes when
    the agent is seen again."""

    agent_id: str = Field(foreign_key="agent.id", primary_key=True, max_length=36)
    reported_at: datetime = Field(sa_type=UTCDateTime)


class ShareLink(SQLModel, table=True):
    """A read-only link for a supplier to one site + profile (+ campaign) report, until
    ``expires_at`` or until revoked. Its token is stored only as its SHA-256
    (:mod:`collector.services.share`)."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    site_id: int = Field(foreign_key="site.id", index=True)
    profile_id: str = Field(max_length=100)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked: bool = False
    created_by: str = Field(default="", max_length=100)
    """Who made it: the admin user's name, or "cli"."""
