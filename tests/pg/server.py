"""A throwaway PostgreSQL server for tests and benchmarks (Debian's ``postgresql``).

``PgServer.start(workdir)`` runs ``initdb`` (as the ``postgres`` user when we are root,
since initdb refuses root) into ``workdir``, starts it on 127.0.0.1 at a free port with
trust authentication and a Unix socket inside ``workdir``, and ``stop()`` shuts it down.
``create_database(name)`` returns a SQLAlchemy URL (psycopg 3) for a fresh database.
:func:`unavailable_reason` says why a server cannot be started here, so tests skip with it.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def unavailable_reason() -> str | None:
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (pip install 'classprobe[postgres]')"
    for tool in ("initdb", "pg_ctl"):
        if _bin(tool) is None:
            return f"PostgreSQL's {tool} is not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start initdb as postgres"
    return None


@contextlib.contextmanager
def throwaway_server(prefix: str = "classprobe-pg-") -> Iterator[PgServer]:
    """A started server in its own work dir (not under pytest's tmp dir: that is private to
    root, and the server runs as postgres), stopped and removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server = PgServer.start(workdir)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PgServer:
    workdir: Path
    port: int

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @staticmethod
    def _as_owner(argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    @classmethod
    def start(cls, workdir: Path) -> PgServer:
        workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres", "postgres")
        server = cls(workdir, _free_port())
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        assert initdb and pg_ctl, unavailable_reason()
        subprocess.run(cls._as_owner([initdb, "-D", str(server.data), "-A", "trust", "-U",
                                      "postgres", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        options = (f"-h 127.0.0.1 -p {server.port} -k {workdir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        subprocess.run(cls._as_owner([pg_ctl, "-D", str(server.data), "-o", options, "-w",
                                      "-l", str(workdir / "server.log"), "start"]),
                       check=True, capture_output=True, timeout=120)
        return server

    def stop(self) -> None:
        pg_ctl = _bin("pg_ctl")
        if pg_ctl and self.data.exists():
            subprocess.run(self._as_owner([pg_ctl, "-D", str(self.data), "-m", "immediate",
                                           "stop"]), capture_output=True, timeout=60)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database called ``name`` (dropped first if it exists)."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
