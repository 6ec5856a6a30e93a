"""The control poll: what the collector wants of this agent, and the clock offset.

``GET /api/v1/agent/control`` answers an :class:`agent.wire.AgentControl` (the site's
timetable and salt, the room's pending jobs, the collector's time). The supervisor polls it
with ``urllib.request`` (stdlib: the idle process must not hold an HTTP library).

The clock offset is measured NTP-style from one exchange: the request leaves at agent time
``t_send`` and the collector receives it at ``received_at``; it answers at ``server_time``
and the answer arrives at ``t_recv``. Then ``offset = ((received_at - t_send) +
(server_time - t_recv)) / 2`` (collector clock minus agent clock), exact when the two
network legs take equally long, and off by at most half the time on the network:
``uncertainty = ((t_recv - t_send) - (server_time - received_at)) / 2``. The collector's
own handling time (database work) drops out. An older collector sends no ``received_at``:
then ``server_time`` is taken as read at the midpoint and the whole round trip counts.

:func:`parse_control` and :func:`parse_job` are pure and name the bad field;
:func:`poll` never raises into the agent's loop: a failure is a :class:`PollResult` with
the reason.
"""

from __future__ import annotations

import functools
import json
import math
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent import __version__
from agent.config import AgentConfig
from agent.wire import AgentControl, Job

CONTROL_PATH = "/api/v1/agent/control"
VERSION_HEADER = "X-Classprobe-Agent-Version"
OFFSET_HEADER = "X-Classprobe-Clock-Offset"
DIRECTIONS = ("download", "upload")
BURST_PROBES = ("load", "wifi", "latency", "path")
"""What a ``burst`` job runs: the light probes, at once."""


class ControlError(ValueError):
    """A control answer that does not have the contract's shape; names the field."""


def clock_offset(t_send: float, t_recv: float, server_time: datetime | float,
                 received_at: datetime | float | None = None) -> tuple[float, float]:
    """(collector clock minus agent clock, uncertainty), both in seconds.

    ``t_send`` and ``t_recv`` are agent wall-clock times (epoch seconds) around the
    request; ``received_at`` and ``server_time`` the collector's when it received the
    poll and when it answered (without ``received_at``: both are ``server_time``)."""
    if t_recv < t_send:
        raise ValueError(f"t_recv {t_recv!r} is before t_send {t_send!r}")
    answered = _epoch(server_time)
    received = answered if received_at is None else _epoch(received_at)
    if answered < received:
        raise ValueError(f"server_time {answered!r} is before received_at {received!r}")
    handling = answered - received
    offset = ((received - t_send) + (answered - t_recv)) / 2.0
    return offset, max(0.0, (t_recv - t_send) - handling) / 2.0


def _epoch(when: datetime | float) -> float:
    return when.timestamp() if isinstance(when, datetime) else when


# -- parsing --------------------------------------------------------------------------------
def _field(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ControlError(f"{where}.{key}: missing")
    return data[key]


def _str(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
    value = data.get(key) if optional else _field(data, key, where)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ControlError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _number(data: Mapping[str, Any], key: str, where: str, *, minimum: float,
            integer: bool = False, default: float | None = None) -> Any:
    value = data.get(key, default) if default is not None else _field(data, key, where)
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        what = "an integer" if integer else "a number"
        raise ControlError(f"{where}.{key}: expected {what}, got {value!r}")
    if value < minimum:
        raise ControlError(f"{where}.{key}: {value!r} is below {minimum:g}")
    return value if integer else float(value)


def _time(data: Mapping[str, Any], key: str, where: str) -> datetime:
    raw = _str(data, key, where)
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ControlError(f"{where}.{key}: {raw!r} is not an ISO 8601 time") from exc
    if stamp.tzinfo is None:
        raise ControlError(f"{where}.{key}: {raw!r} has no timezone")
    return stamp


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ControlError(f"{where}: expected an object, got {value!r}")
    return value


def parse_job(data: Any, where: str = "job") -> Job:
    """One job object (from the control answer or the worker's ``--job``)."""
    job = _mapping(data, where)
    kind = _str(job, "kind", where)
    if kind not in ("room_test", "burst"):
        raise ControlError(f"{where}.kind: {kind!r} is not 'room_test' or 'burst'")
    directions = job.get("directions", [])
    if not isinstance(directions, list) or any(d not in DIRECTIONS for d in directions):
        raise ControlError(f"{where}.directions: {directions!r} is not a list of "
                           f"{' / '.join(DIRECTIONS)}")
    if kind == "room_test" and "download" not in directions and "upload" not in directions:
        raise ControlError(f"{where}.directions: a room test needs download or upload, "
                           f"got {directions!r}")
    job_id = _str(job, "job_id", where)
    if not job_id:
        raise ControlError(f"{where}.job_id: empty")
    return Job(job_id=job_id, kind=kind, start_at=_time(job, "start_at", where),
               duration_s=_number(job, "duration_s", where, minimum=0.0, default=0.0),
               directions=list(directions),
               download_url=_str(job, "download_url", where, optional=True),
               upload_url=_str(job, "upload_url", where, optional=True),
               streams=_number(job, "streams", where, minimum=1, integer=True, default=4),
               reason=_str(job, "reason", where, optional=True))


def parse_control(data: Any) -> AgentControl:
    """The JSON of a control answer as an :class:`AgentControl`; ControlError names what
    is wrong. Unknown keys are ignored (a newer collector may say more)."""
    where = "control"
    control = _mapping(data, where)
    timetable = control.get("timetable")
    if timetable is not None and not isinstance(timetable, dict):
        raise ControlError(f"{where}.timetable: expected an object or null, got {timetable!r}")
    jobs = _field(control, "jobs", where)
    if not isinstance(jobs, list):
        raise ControlError(f"{where}.jobs: expected a list, got {jobs!r}")
    return AgentControl(
        server_time=_time(control, "server_time", where),
        site=_str(control, "site", where), room=_str(control, "room", where),
        site_salt=_str(control, "site_salt", where), timetable=timetable,
        jobs=[parse_job(j, f"{where}.jobs[{i}]") for i, j in enumerate(jobs)],
        poll_interval_s=_number(control, "poll_interval_s", where, minimum=1.0),
        received_at=(_time(control, "received_at", where)
                     if control.get("received_at") is not None else None))


# -- the poll -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PollResult:
    control: AgentControl | None = None
    raw: dict[str, Any] | None = None
    """The answer's JSON as received (kept in the agent's state)."""
    offset_s: float | None = None
    uncertainty_s: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return json.dumps(data)[:200]


def request_for(cfg: AgentConfig, offset_s: float | None) -> urllib.request.Request:
    headers = {"Authorization": f"Bearer {cfg.credential}", "Accept": "application/json",
               "User-Agent": f"classprobe-agent/{__version__}", VERSION_HEADER: __version__}
    if offset_s is not None:
        headers[OFFSET_HEADER] = f"{offset_s:.3f}"
    return urllib.request.Request(cfg.collector_url.rstrip("/") + CONTROL_PATH,
                                  headers=headers, method="GET")


@functools.lru_cache(maxsize=4)
def _opener(ca_bundle: str | None, https: bool) -> urllib.request.OpenerDirector:
    """One opener per trust store, kept: a new SSL context per poll costs ~40 ms of CPU and,
    held in the opener's reference cycles, memory that only a full collection frees."""
    if not https:
        return urllib.request.build_opener()
    context = ssl.create_default_context(cafile=ca_bundle or None)
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))


def poll(cfg: AgentConfig, offset_s: float | None = None, *,
         wall: Callable[[], float] = time.time) -> PollResult:
    """Ask the collector for this agent's control; never raises (errors are in the result).

    ``offset_s`` is the last measured clock offset, reported to the collector."""
    if not cfg.enrolled:
        return PollResult(error="not enrolled: no collector to poll")
    https = cfg.collector_url.lower().startswith("https:")
    try:
        opener = _opener(cfg.ca_bundle if https else None, https)
    except (OSError, ssl.SSLError) as exc:
        return PollResult(error=f"cannot load ca_bundle {cfg.ca_bundle!r}: {exc}")
    t_send = wall()
    try:
        with opener.open(request_for(cfg, offset_s), timeout=cfg.timeout_s) as answer:
            body = answer.read()
        t_recv = wall()
    except urllib.error.HTTPError as exc:
        return PollResult(error=f"collector answered {exc.code}: {_detail(exc.read())}")
    except urllib.error.URLError as exc:
        return PollResult(error=f"collector unreachable: {exc.reason}")
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed URL
        return PollResult(error=f"collector unreachable: {type(exc).__name__}: {exc}")
    try:
        raw = json.loads(body)
        control = parse_control(raw)
    except ValueError as exc:  # bad JSON or ControlError
        return PollResult(error=f"collector sent a control answer the agent cannot use: {exc}")
    offset, uncertainty = clock_offset(t_send, t_recv, control.server_time,
                                       control.received_at)
    return PollResult(control=control, raw=raw, offset_s=offset, uncertainty_s=uncertainty)
