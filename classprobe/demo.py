"""``classprobe demo``: the whole path on one machine, with real processes.

1. starts the collector (``classprobe collector serve``) on SQLite in a data directory;
2. creates a site and enrols a local agent into a room with the site's token;
3. runs a few agent cycles (``classprobe agent once``): device, latency to the supplier
   endpoints and to the collector, bandwidth against the collector's speed-test endpoints;
4. makes a web login ``demo-admin`` with a new random password, printed once (the report
   pages need a login);
5. prints the readiness report and the URL of its web page, and keeps the collector up
   until Ctrl-C (``--exit`` stops it at once).

Every step is the same CLI a technician would type, run as a subprocess, so the demo
proves the commands work rather than calling internals. On an offline machine the
supplier endpoints fail with the reason and the verdicts say ``unknown``: nothing is made
up.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from agent.config import load_config, save_config

DEFAULT_TARGETS = ("https://teams.microsoft.com/",)
DEMO_ADMIN = "demo-admin"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="classprobe demo", description=__doc__.split("\n")[0])
    p.add_argument(
        "--data-dir",
        default="classprobe-data",
        help="where the SQLite database, agent config and spool live",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--port", type=int, default=8000, help="collector port (a free one is picked if it is busy)"
    )
    p.add_argument("--site", default="demo-school")
    p.add_argument("--room", default="Room 12")
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument(
        "--target",
        action="append",
        dest="targets",
        metavar="URL",
        help="supplier endpoint to measure (repeatable); default: Microsoft Teams",
    )
    p.add_argument(
        "--exit",
        action="store_true",
        help="stop the collector after printing the report instead of serving it",
    )
    return p


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _classprobe(*args: str, check: bool = True,
                stdin_text: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "classprobe.cli", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, input=stdin_text)
    if check and out.returncode != 0:
        raise SystemExit(
            f"demo: `classprobe {' '.join(args)}` failed "
            f"(exit {out.returncode}):\n{out.stderr or out.stdout}"
        )
    return out


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"demo: the collector exited ({proc.returncode}); "
                f"its log:\n{log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/speed/ping", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"demo: the collector did not answer at {url} within {timeout_s:.0f} s")


def _site_token(site: str, db: str) -> str:
    created = _classprobe("collector", "create-site", site, "--json", "--db", db, check=False)
    if created.returncode != 0:  # the site exists from an earlier demo: rotate its token
        created = _classprobe("collector", "new-token", site, "--json", "--db", db)
    token: str = json.loads(created.stdout)["token"]
    return token


def _demo_admin(db: str) -> str:
    """Make (or, from an earlier demo, reset) the login ``demo-admin``; return its new
    random password."""
    password = secrets.token_urlsafe(15)
    args = (DEMO_ADMIN, "--password-stdin", "--db", db)
    created = _classprobe("collector", "admin-user", "create", *args, check=False,
                          stdin_text=password + "\n")
    if created.returncode != 0:
        _classprobe("collector", "admin-user", "password", *args, stdin_text=password + "\n")
    return password


def _configure_agent(config: Path, url: str, token: str, room: str, targets: list[str]) -> None:
    if config.exists():
        cfg = load_config(config, environ={})
        if cfg.collector_url != url:
            cfg.collector_url = url
    else:
        _classprobe(
            "agent",
            "enroll",
            "--collector",
            url,
            "--token",
            token,
            "--room",
            room,
            "--config",
            str(config),
        )
        cfg = load_config(config, environ={})
    cfg.targets = list(targets)
    # The collector is on loopback here, which moves gigabytes a second: a short test with
    # a byte cap that loopback cannot reach first, so the measuring window is long enough.
    cfg.bandwidth_seconds = 5.0
    cfg.bandwidth_max_bytes = 20_000_000_000
    save_config(config, cfg)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{data / 'classprobe.db'}"
    port = args.port if _port_free(args.host, args.port) else _free_port(args.host)
    if port != args.port:
        print(f"port {args.port} is busy; using {port}")
    url = f"http://{args.host}:{port}"

    log = data / "collector.log"
    with log.open("ab") as log_file:
        collector = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "classprobe.cli",
                "collector",
                "serve",
                "--host",
                args.host,
                "--port",
                str(port),
                "--db",
                db,
                "--data-dir",
                str(data),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(url, collector, log, timeout_s=60)
        print(f"collector  {url}  (SQLite: {data / 'classprobe.db'}, log: {log})")
        token = _site_token(args.site, db)
        config = data / "agent.toml"
        _configure_agent(config, url, token, args.room, args.targets or list(DEFAULT_TARGETS))
        print(f"agent      enrolled in site {args.site!r}, room {args.room!r} ({config})")
        for cycle in range(1, args.cycles + 1):
            print(f"\n-- agent cycle {cycle}/{args.cycles} --", flush=True)
            out = _classprobe("agent", "once", "--config", str(config))
            print(out.stdout.rstrip())
        print("\n-- readiness --")
        print(_classprobe("report", "--site", args.site, "--db", db).stdout.rstrip())
        password = _demo_admin(db)
        print(f"\nreport page: {url}/sites/{args.site}/report")
        print(f"  log in as: {DEMO_ADMIN}")
        print(f"  password:  {password}  (new for this run; make your own login with "
              "`classprobe collector admin-user create NAME`)")
        print(f"raw data:    classprobe export --site {args.site} --db {db}")
        if not args.exit:
            print("\ncollector running; press Ctrl-C to stop", flush=True)
            signal.signal(signal.SIGTERM, _interrupt)
            while collector.poll() is None:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        if collector.poll() is None:
            os.killpg(collector.pid, signal.SIGTERM)
            try:
                collector.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(collector.pid, signal.SIGKILL)
    return 0
