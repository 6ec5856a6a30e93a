"""Real processes: a uvicorn collector on 127.0.0.1 and agents run through the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli(
    *args: str, check: bool = True, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``classprobe ARGS`` as a user would, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-m", "classprobe.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check:
        assert out.returncode == 0, f"classprobe {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out


@dataclass
class Collector:
    """A collector process that can be stopped and started again on the same port and DB."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _admin_key: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> str:
        return f"sqlite:///{self.data_dir / 'classprobe.db'}"

    def start(self) -> None:
        log = (self.data_dir / "collector.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "classprobe.cli",
                "collector",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db",
                self.db,
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.data_dir / "collector.log").read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/speed/ping", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise AssertionError("collector did not come up")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        self.proc = None

    def admin_key(self) -> str:
        """An administrator API key (made once with ``collector admin-key create``)."""
        if not self._admin_key:
            out = cli("collector", "admin-key", "create", "e2e", "--json", "--db", self.db)
            self._admin_key = str(json.loads(out.stdout)["key"])
        return self._admin_key

    def get_json(self, path: str) -> object:
        """An administrator's read of a JSON API (read APIs need an admin)."""
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {self.admin_key()}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    def create_site(self, name: str) -> str:
        out = cli("collector", "create-site", name, "--json", "--db", self.db)
        token: str = json.loads(out.stdout)["token"]
        return token

    def export(self, site: str) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = json.loads(
            cli("export", "--site", site, "--format", "json", "--db", self.db).stdout
        )
        return rows


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = Collector(data_dir=tmp_path / "collector")
    c.data_dir.mkdir()
    c.start()
    try:
        yield c
    finally:
        c.stop()


def closed_port_url() -> str:
    """An http URL on loopback where nothing listens: a supplier endpoint that fails."""
    return f"http://127.0.0.1:{free_port()}/"
