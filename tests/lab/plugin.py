"""pytest fixtures for the network lab.

Use from any test directory: ``tests/lab/conftest.py`` re-exports them for the lab's own
tests; elsewhere, import them into your conftest (``from tests.lab.plugin import *``) or
list ``pytest_plugins = ["tests.lab.plugin"]`` in the root ``tests/conftest.py``.

- ``lab``            function scope: the session's Lab, reset (unshaped, no wire, no
                     filters) after the test. Skips with the reason when the lab cannot run.
- ``lab_endpoints``  session scope: far-side servers running in ``net`` (``Endpoints``).
- ``lab_certs``      session scope: the lab CA bundle and server certificate.
- ``lab_collector``  session scope: the real collector app in ``net`` (``Collector.url``).
- ``make_lab``       function scope: ``make_lab(congestion_control="reno")`` builds a
                     private Lab, removed after the test.
- ``lab_required``   session scope: skips unless root + ip netns + tc + /dev/net/tun.

Mark lab tests with ``@pytest.mark.lab`` (or ``pytestmark = pytest.mark.lab``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab import nsutil
from tests.lab.certs import CertSet, make_certs
from tests.lab.netlab import Lab
from tests.lab.nsutil import LabError
from tests.lab.procs import REPO_ROOT

FAR_NAME = Lab.far_name
LAB_DOMAIN = Lab.lab_domain

__all__ = ["Collector", "Endpoints", "lab", "lab_certs", "lab_collector", "lab_endpoints",
           "lab_required", "lab_session", "make_lab", "start_collector", "start_endpoints"]


@dataclass(frozen=True)
class Endpoints:
    """Where the far-side servers answer. URLs use the address; ``hostname`` resolves
    to it through the lab DNS for processes run with ``lab.run``/``lab.popen``."""

    addr: str
    hostname: str
    ca_bundle: Path
    http_port: int = 80
    https_port: int = 443
    ws_port: int = 8765
    wss_port: int = 8766
    stun_port: int = 3478
    udp_echo_port: int = 7
    dns_port: int = 53

    @property
    def http_url(self) -> str:
        return f"http://{self.addr}:{self.http_port}"

    @property
    def https_url(self) -> str:
        """By address; the certificate also names ``hostname`` and ``*.lab.test``."""
        return f"https://{self.addr}:{self.https_port}"

    @property
    def https_name_url(self) -> str:
        return f"https://{self.hostname}:{self.https_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.addr}:{self.ws_port}/"

    @property
    def wss_url(self) -> str:
        return f"wss://{self.addr}:{self.wss_port}/"


def start_endpoints(lab: Lab, certs: CertSet, zone: dict[str, str] | None = None) -> Endpoints:
    """Run ``tests.lab.endpoints`` in ``net`` on ``lab.far_addr`` (killed at ``lab.close``)."""
    zone = {FAR_NAME: lab.far_addr, f"www.{LAB_DOMAIN}": lab.far_addr, **(zone or {})}
    args = ["--addr", lab.far_addr, "--cert", str(certs.server_pem)]
    for name, addr in zone.items():
        args += ["--zone", f"{name}={addr}"]
    lab.start_python("net", "tests.lab.endpoints", args, name="endpoints")
    return Endpoints(lab.far_addr, FAR_NAME, certs.ca_bundle)


@dataclass(frozen=True)
class Collector:
    """The real collector app (``classprobe collector serve``) running in ``net``."""

    url: str
    data_dir: Path


def start_collector(lab: Lab, data_dir: Path, port: int = 8000) -> Collector:
    """Run the real collector on ``far_addr:port`` in ``net`` (SQLite in ``data_dir``)."""
    log = open(lab.workdir / "collector.log", "wb")  # noqa: SIM115 (the process keeps it)
    proc = lab.popen("net", [sys.executable, "-m", "classprobe.cli", "collector", "serve",
                             "--host", lab.far_addr, "--port", str(port), "--log-level", "info"],
                     cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                     env={"CLASSPROBE_DATA_DIR": str(data_dir)})
    log.close()
    try:
        lab.wait_listening("net", lab.far_addr, port, timeout=60, proc=proc)
    except LabError as e:
        tail = (lab.workdir / "collector.log").read_text(errors="replace")[-2000:]
        raise LabError(f"{e}\n{tail}") from e
    return Collector(f"http://{lab.far_addr}:{port}", data_dir)


@pytest.fixture(scope="session")
def lab_required() -> None:
    reason = nsutil.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    nsutil.cleanup_stale()


@pytest.fixture(scope="session")
def lab_session(lab_required: None) -> Iterator[Lab]:
    with contextlib.closing(Lab.create()) as built:
        yield built


@pytest.fixture
def lab(lab_session: Lab) -> Iterator[Lab]:
    yield lab_session
    lab_session.reset()


@pytest.fixture(scope="session")
def lab_certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    identities = [FAR_NAME, f"*.{LAB_DOMAIN}", Lab.far_addr]
    return make_certs(tmp_path_factory.mktemp("lab-certs"), identities)


@pytest.fixture(scope="session")
def lab_endpoints(lab_session: Lab, lab_certs: CertSet) -> Endpoints:
    return start_endpoints(lab_session, lab_certs)


@pytest.fixture(scope="session")
def lab_collector(lab_session: Lab, tmp_path_factory: pytest.TempPathFactory) -> Collector:
    """The real collector in ``net`` at ``http://10.77.10.1:8000``; skips if it cannot start."""
    if importlib.util.find_spec("collector.app") is None:
        pytest.skip("collector.app is not available")
    return start_collector(lab_session, tmp_path_factory.mktemp("lab-collector"))


class LabFactory:
    """``make_lab``: builds labs of a test's own, and keeps them (to close them, and for
    a failing test's report: ``tests.lab.rerun_plugin``)."""

    def __init__(self) -> None:
        self.built: list[Lab] = []

    def __call__(self, **kw: Any) -> Lab:
        new = Lab.create(**kw)
        self.built.append(new)
        return new


@pytest.fixture
def make_lab(lab_required: None) -> Iterator[Callable[..., Lab]]:
    factory = LabFactory()
    yield factory
    for one in factory.built:
        one.close()
