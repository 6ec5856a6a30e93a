"""A small stand-in for the collector's agent-facing API, on 127.0.0.1 (stdlib only).

It speaks the contract the agent relies on (enrol, reports, /speed/*, the control poll,
flags) and counts what it sent and received, so tests can compare the agent's numbers
with the truth. It does not import the collector: the agent's tests must not depend on
its code. Its clock can run ahead of (or behind) the real one by ``clock_skew_s``: the
control poll's ``server_time`` and the recorded request times use that clock.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "good-token"
CREDENTIAL = "agent-secret-credential"
SITE_SALT = "test-school-salt"
PIECE = 64 * 1024


@dataclass
class State:
    mode: str = "ok"
    """ok | error500 | reject422 | unauthorized401"""
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: int = 0
    download_sent: int = 0
    upload_received: int = 0
    rate_bps: float | None = None
    """Pace each download/upload connection at this many bit/s (None: as fast as possible)."""
    clock_skew_s: float = 0.0
    """The stand-in's clock minus the real clock."""
    timetable: dict[str, Any] | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)
    poll_interval_s: float = 60.0
    control_mode: str = "ok"
    """ok | error500 | garbage (a 200 answer that is not a control document)"""
    polls: list[dict[str, str | None]] = field(default_factory=list)
    """Headers of each control poll: version and clock offset the agent sent."""
    flags: list[dict[str, Any]] = field(default_factory=list)
    flag_mode: str = "ok"
    """ok | error500"""
    speed_starts: list[float] = field(default_factory=list)
    """Stand-in clock time (epoch s) of each /speed/download or /speed/upload request."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.time() + self.clock_skew_s

    def iso_now(self) -> str:
        return datetime.fromtimestamp(self.now(), UTC).isoformat()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as uvicorn does; else 40 ms delayed-ACK stalls
    server: StandInServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._reply(status, json.dumps(data).encode())

    def _pace(self, started: float, nbytes: int) -> None:
        rate = self.server.state.rate_bps
        if rate:
            ahead = started + nbytes * 8 / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)

    def _send_bytes(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        block, left, started = b"\xa5" * PIECE, size, time.perf_counter()
        try:
            while left > 0:
                n = min(PIECE, left)
                self.wfile.write(block[:n])
                left -= n
                with self.server.state.lock:
                    self.server.state.download_sent += n
                self._pace(started, size - left)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        if url.path == "/speed/ping":
            self._reply(200, b"pong", "text/plain")
        elif url.path == "/api/v1/agent/control":
            self._control()
        elif url.path == "/speed/download":
            self._note_speed_start()
            self._send_bytes(int(parse_qs(url.query).get("bytes", ["1048576"])[0]))
        elif url.path == "/big":
            self._send_bytes(4_000_000)
        else:
            self._json(404, {"detail": f"no route {url.path}"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("Content-Length", "0"))
        url = urlsplit(self.path)
        if url.path == "/speed/upload":
            self._note_speed_start()
            received, started = 0, time.perf_counter()
            try:
                while received < length:
                    chunk = self.rfile.read(min(PIECE, length - received))
                    if not chunk:
                        break
                    received += len(chunk)
                    with self.server.state.lock:
                        self.server.state.upload_received += len(chunk)
                    self._pace(started, received)
            except ConnectionResetError:
                self.close_connection = True
                return
            if received < length:
                self.close_connection = True
                return
            self._json(200, {"bytes": received})
            return
        body = self.rfile.read(length)
        if url.path == "/api/v1/enrol":
            self._enrol(body)
        elif url.path == "/api/v1/reports":
            self._reports(body)
        elif url.path == "/api/v1/flags":
            self._flag(body)
        else:
            self._json(404, {"detail": f"no route {url.path}"})

    def _note_speed_start(self) -> None:
        state = self.server.state
        with state.lock:
            state.speed_starts.append(state.now())

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {CREDENTIAL}":
            self._json(401, {"detail": "unknown credential"})
            return False
        return True

    def _control(self) -> None:
        state = self.server.state
        if not self._authorised():
            return
        with state.lock:
            state.polls.append({"version": self.headers.get("X-Classprobe-Agent-Version"),
                                "offset": self.headers.get("X-Classprobe-Clock-Offset")})
            mode, jobs = state.control_mode, list(state.jobs)
        if mode == "error500":
            self._json(500, {"detail": "database is down"})
        elif mode == "garbage":
            self._json(200, {"hello": "world"})
        else:
            self._json(200, {"server_time": state.iso_now(), "site": "Test School",
                             "room": "Lab 1", "site_salt": SITE_SALT,
                             "timetable": state.timetable, "jobs": jobs,
                             "poll_interval_s": state.poll_interval_s})

    def _flag(self, body: bytes) -> None:
        state = self.server.state
        if not self._authorised():
            return
        if state.flag_mode == "error500":
            self._json(500, {"detail": "database is down"})
            return
        data = json.loads(body)
        flag_id, burst_id = str(uuid.uuid4()), str(uuid.uuid4())
        with state.lock:
            state.flags.append({"flag_id": flag_id, "burst_job_id": burst_id, **data})
        self._json(201, {"flag_id": flag_id, "burst_job_id": burst_id})

    def _enrol(self, body: bytes) -> None:
        data = json.loads(body)
        if data.get("token") != TOKEN:
            self._json(401, {"detail": "unknown enrolment token"})
            return
        self._json(200, {"agent_id": "agent-1", "credential": CREDENTIAL,
                         "site": "Test School", "room": data["room"],
                         "site_salt": SITE_SALT})

    def _reports(self, body: bytes) -> None:
        state = self.server.state
        with state.lock:
            state.posts += 1
        if self.headers.get("Authorization") != f"Bearer {CREDENTIAL}" or \
                state.mode == "unauthorized401":
            self._json(401, {"detail": "unknown credential"})
            return
        if state.mode == "error500":
            self._json(500, {"detail": "database is down"})
            return
        batch = json.loads(body)
        if state.mode == "reject422":
            self._json(422, {"detail": "invalid report",
                             "problems": ["results[0].measurements[0]: value -1 is below 0"]})
            return
        accepted, duplicates = [], []
        with state.lock:
            for report in batch["reports"]:
                rid = report["report_id"]
                uuid.UUID(rid)
                if rid in state.stored:
                    duplicates.append(rid)
                else:
                    state.stored[rid] = report
                    accepted.append(rid)
        self._json(200, {"accepted": accepted, "duplicates": duplicates})


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-transfer (the probe stopping) are normal here."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = State()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def start() -> tuple[StandInServer, threading.Thread]:
    server = StandInServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    return server, thread


def write_config(directory: Path, collector_url: str, **extra: Any) -> Path:
    """An enrolled agent config for this stand-in (no enrolment round trip), saved."""
    from agent.config import AgentConfig, save_config

    cfg = AgentConfig(collector_url=collector_url, agent_id="agent-1", credential=CREDENTIAL,
                      site="Test School", room="Lab 1", icmp=False, latency_samples=2,
                      timeout_s=2.0, **extra)
    path = directory / "agent.toml"
    save_config(path, cfg)
    return path
