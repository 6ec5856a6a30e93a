"""The flag inbox: how a teacher without access to the agent's credential raises a flag.

On a PC where the agent runs as a service, its config (which holds the credential) is
readable only by the service. ``classprobe flag`` run by a teacher therefore drops a
small request file into the service's inbox, ``<state dir>/flag-inbox`` (on Linux
``/var/lib/classprobe/flag-inbox``, mode 1733: anyone may add a file, nobody but the
service may list or remove them), and the supervisor, which looks every few seconds,
sends the flag with its own credential and runs the burst. A request holds the note and
the time: no user name, no host name.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import AgentConfig

log = logging.getLogger(__name__)

INBOX_NAME = "flag-inbox"
INBOX_MODE = 0o1733
MAX_NOTE = 500
MAX_REQUEST_BYTES = 4096
MAX_REQUESTS_PER_TAKE = 20
"""A flood of requests is handled a few at a time (the collector rate-limits too)."""


@dataclass(frozen=True)
class FlagRequest:
    note: str
    created_at: datetime


def inbox_of(spool_root: Path) -> Path:
    """The inbox beside the spool (the service's state directory holds both)."""
    return spool_root.parent / INBOX_NAME


def system_inbox(sys_platform: str | None = None) -> Path:
    """Where a system-wide service's inbox is (``agent install`` without ``--user``)."""
    import sys

    from agent.install.paths import agent_paths, platform_family

    paths = agent_paths(platform_family(sys_platform or sys.platform), "system")
    return Path(paths.state_dir) / INBOX_NAME


def hand_to_service(note: str, environ: Mapping[str, str] | None = None
                    ) -> tuple[Path | None, str | None]:
    """For a user without an enrolled config of their own, drop the flag into the service's
    inbox (``$CLASSPROBE_FLAG_INBOX`` or :func:`system_inbox`). Returns (None, None) when
    this does not apply (the user has a config, or no service inbox exists), (inbox, None)
    when the request was left, (inbox, why) when it could not be written."""
    from agent.config import ConfigError, default_config_path, load_config
    from agent.wire import utcnow

    env = os.environ if environ is None else environ
    try:
        own = load_config(default_config_path(env), env).enrolled
    except ConfigError:
        own = False
    inbox = Path(env.get("CLASSPROBE_FLAG_INBOX") or system_inbox())
    if own or not inbox.is_dir():
        return None, None
    try:
        drop_request(inbox, note, utcnow())
    except OSError as exc:
        return inbox, str(exc)
    return inbox, None


def drop_request(inbox: Path, note: str, now: datetime) -> Path:
    """Write one request into ``inbox`` (exclusive create: never overwrites)."""
    note = note.strip()[:MAX_NOTE]
    body = json.dumps({"note": note, "created_at": now.astimezone(UTC).isoformat()})
    path = inbox / f"flag-{uuid.uuid4()}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(body)
    return path


def parse_request(text: str) -> FlagRequest:
    """A request file's content; ValueError naming what is wrong."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    note, created = data.get("note", ""), data.get("created_at")
    if not isinstance(note, str):
        raise ValueError(f"note {note!r} is not a string")
    if not isinstance(created, str):
        raise ValueError(f"created_at {created!r} is not a string")
    when = datetime.fromisoformat(created)
    if when.tzinfo is None:
        raise ValueError(f"created_at {created!r} has no timezone")
    return FlagRequest(note.strip()[:MAX_NOTE], when)


def take_requests(inbox: Path) -> list[FlagRequest]:
    """The waiting requests, oldest first; each file is removed once read. A bad file is
    removed with a warning naming it (it cannot become valid by waiting)."""
    try:
        entries = sorted(inbox.glob("flag-*.json"), key=_mtime)[:MAX_REQUESTS_PER_TAKE]
    except OSError as exc:
        log.warning("cannot read the flag inbox %s: %s", inbox, exc)
        return []
    found = []
    for path in entries:
        try:
            if path.stat().st_size > MAX_REQUEST_BYTES:
                raise ValueError(f"{path.stat().st_size} bytes is too big")
            found.append(parse_request(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            log.warning("flag request %s ignored: %s", path.name, exc)
        try:
            path.unlink()
        except OSError as exc:
            log.warning("cannot remove flag request %s: %s", path.name, exc)
    return found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def relay(spool_root: Path, config_path: Path, cfg: AgentConfig,
          stopped: Callable[[], bool]) -> int:
    """Send each flag a teacher left in the inbox, with its burst, as ``classprobe flag``
    does for a user who can read the config (one watched process each); returns how many
    were started."""
    import sys

    from agent.control import BURST_PROBES
    from agent.watchdog import run_watched, time_limit

    started = 0
    for request in take_requests(inbox_of(spool_root)):
        argv = [sys.executable, "-m", "classprobe.cli", "flag", "--json",
                "--config", str(config_path), "--note", request.note]
        limit = time_limit(cfg, tuple(BURST_PROBES), None)
        watched = run_watched(argv, limit_s=limit, max_rss_mb=cfg.watchdog_max_rss_mb,
                              stopped=stopped)
        started += 1
        outcome = "sent" if watched.returncode == 0 else (
            watched.killed or f"not sent (exit {watched.returncode}); its burst is spooled")
        log.info("flag from the inbox (raised %s): %s", request.created_at.isoformat(),
                 outcome)
    return started
