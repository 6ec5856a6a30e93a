"""The lab network: classroom, gateway and far side in three network namespaces.

::

    [cls] c0 10.77.1.2 ──veth── g0 10.77.1.1 [gw] g1 10.77.2.1 ──veth── n0 10.77.2.2 [net]
                                  tbf "down"      tbf "up"                  lo 10.77.10.1 (far)
                                                  gt 10.77.3.1 ══TUN wire══ nt 10.77.3.2
                                                  tbf "up" (overhead 14)

- ``cls`` is the classroom PC: default route via the gateway; DNS (``/etc/netns/<ns>/
  resolv.conf``) points at the far-side resolver ``far_addr``, so no lookup ever leaves the lab.
- ``gw`` forwards (``ip_forward=1``); its default route leads to ``net``. Rate shaping is
  tbf on its egress: ``down`` on g0 (towards cls), ``up`` on g1 and gt (towards net).
- ``net`` is "the internet": services listen on ``far_addr`` (a /32 on its loopback), so
  traffic to them crosses the gateway and, when a path is set, the TUN wire. ``net`` has no
  default route: anything not in the lab is unreachable, and no namespace has a link to
  the host, so nothing can leave the machine.
- ``set_path()`` starts the wire (delay/jitter/loss) and moves the gw↔net routes onto the
  TUN pair; ``clear_path()`` moves them back to the veth and stops it.

What a correct measurement must find in this lab is in ``tests.lab.truth``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tests.lab import nsutil
from tests.lab.nsutil import LabError, ip
from tests.lab.procs import REPO_ROOT, python_env, stop_process, wait_ready
from tests.lab.truth import ETHERNET_HEADER
from tests.lab.tunwire import WireSpec

if TYPE_CHECKING:
    from tests.lab.filters import GatewayFilters

ROLES = ("cls", "gw", "net")
Direction = Literal["down", "up", "both"]
T = TypeVar("T")

CLS_DEV, GW_CLS_DEV, GW_NET_DEV, NET_DEV = "c0", "g0", "g1", "n0"
GW_WIRE_DEV, NET_WIRE_DEV = "gt", "nt"
TBF_LATENCY_MS = 50
MIN_BURST_BYTES = 15000
# On the TUN device (no link header) charge each packet 14 more bytes, as on Ethernet.
# tbf adds ``overhead`` once per skb, so forwarded GSO super-packets must be cut into
# segments first: a peak bucket of one MTU makes tbf segment anything larger.
TUN_TBF_EXTRA = ["overhead", str(ETHERNET_HEADER), "peakrate", "10gbit", "mtu", "1600"]


def burst_bytes(rate_mbit: float) -> int:
    """tbf bucket: 10 ms of rate, at least 15000 B (lab-facts §3)."""
    return max(MIN_BURST_BYTES, int(rate_mbit * 1e6 / 8 * 0.010))


class Lab:
    """Three namespaces, their processes, shaping and wire. Build with ``Lab.create()``.

    Attributes: ``id``, ``ns`` (role → namespace name), ``workdir`` (logs, certificates),
    and the addresses ``cls_addr``, ``gw_cls_addr``, ``gw_net_addr``, ``net_link_addr``,
    ``far_addr`` (where far-side services listen), ``dns_addr`` (the lab resolver),
    ``far_name`` (far.lab.test, resolved by the lab DNS), ``shaping``, ``path``, ``filters``.
    """

    cls_addr = "10.77.1.2"
    gw_cls_addr = "10.77.1.1"
    gw_net_addr = "10.77.2.1"
    net_link_addr = "10.77.2.2"
    gw_wire_addr = "10.77.3.1"
    net_wire_addr = "10.77.3.2"
    far_addr = "10.77.10.1"
    far_net = "10.77.10.0/24"
    cls_net = "10.77.1.0/24"
    dns_addr = far_addr
    far_name = "far.lab.test"
    lab_domain = "lab.test"

    def __init__(self, lab_id: str, workdir: Path, congestion_control: str | None) -> None:
        self.id = lab_id
        self.ns = {role: f"{nsutil.PREFIX}{lab_id}-{role}" for role in ROLES}
        self.workdir = workdir
        self.congestion_control = congestion_control
        self.shaping: dict[str, float] = {}
        self.path: WireSpec | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._wire: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._owns_workdir = False
        self._filters: GatewayFilters | None = None

    # ----------------------------------------------------------------- lifecycle
    @classmethod
    def create(cls, *, congestion_control: str | None = None,
               workdir: Path | None = None) -> Lab:
        """Build a fresh lab. On any failure everything built so far is removed.

        ``congestion_control`` sets ``net.ipv4.tcp_congestion_control`` in all three
        namespaces (None keeps the kernel default, bbr here). A non-initial namespace may
        only pick what the host lists in ``net.ipv4.tcp_allowed_congestion_control``
        ("reno bbr" here): "reno" always works; "cubic" needs the host (CI setup) to run
        ``sysctl -w net.ipv4.tcp_allowed_congestion_control="reno bbr cubic"`` first,
        otherwise this raises LabError saying so. See ``nsutil.congestion_control_allowed``.
        """
        if congestion_control:
            nsutil.check_congestion_control(congestion_control)
        lab_id = secrets.token_hex(2)
        while any(nsutil.lab_id_of(n) == lab_id for n in nsutil.lab_namespaces()):
            lab_id = secrets.token_hex(2)
        own = workdir is None
        lab = cls(lab_id, workdir or Path(tempfile.mkdtemp(prefix=f"cpl{lab_id}-")),
                  congestion_control)
        lab._owns_workdir = own
        nsutil.write_owner(lab_id, list(lab.ns.values()))
        atexit.register(lab.close)
        try:
            lab._build()
        except BaseException:
            lab.close()
            raise
        return lab

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every process, delete the namespaces and /etc/netns dirs. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            for proc in [*self._procs, *([self._wire] if self._wire else [])]:
                stop_process(proc)
        finally:
            for name in self.ns.values():
                nsutil.delete_netns(name)
            nsutil.forget(self.id)
            if self._owns_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            atexit.unregister(self.close)

    def exists(self) -> bool:
        present = set(nsutil.lab_namespaces())
        return all(name in present for name in self.ns.values())

    def _build(self) -> None:
        for role, name in self.ns.items():
            ip("netns", "add", name)
            etc = nsutil.ETC_NETNS / name
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(f"nameserver {self.dns_addr}\n")
            self.ipn(role, "link", "set", "lo", "up")
        self.ipn("cls", "link", "add", CLS_DEV, "type", "veth", "peer", "name", GW_CLS_DEV,
                 "netns", self.ns["gw"])
        self.ipn("gw", "link", "add", GW_NET_DEV, "type", "veth", "peer", "name", NET_DEV,
                 "netns", self.ns["net"])
        for role, dev, addr in (("cls", CLS_DEV, self.cls_addr),
                                ("gw", GW_CLS_DEV, self.gw_cls_addr),
                                ("gw", GW_NET_DEV, self.gw_net_addr),
                                ("net", NET_DEV, self.net_link_addr)):
            self.ipn(role, "addr", "add", f"{addr}/24", "dev", dev)
            self.ipn(role, "link", "set", dev, "up")
        for role, dev, addr, peer in (("gw", GW_WIRE_DEV, self.gw_wire_addr, self.net_wire_addr),
                                      ("net", NET_WIRE_DEV, self.net_wire_addr, self.gw_wire_addr)):
            self.ipn(role, "tuntap", "add", "dev", dev, "mode", "tun")
            self.ipn(role, "link", "set", dev, "txqueuelen", "1000")
            self.ipn(role, "addr", "add", addr, "peer", peer, "dev", dev)
            self.ipn(role, "link", "set", dev, "up")
        self.ipn("net", "addr", "add", f"{self.far_addr}/32", "dev", "lo")
        settings = {"net.ipv6.conf.all.disable_ipv6": "1",
                    "net.ipv6.conf.default.disable_ipv6": "1",
                    "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}
        if self.congestion_control:
            settings["net.ipv4.tcp_congestion_control"] = self.congestion_control
        for role in ROLES:
            for key, value in settings.items():
                self.sysctl(role, key, value)
        self.sysctl("gw", "net.ipv4.ip_forward", "1")
        self.ipn("cls", "route", "add", "default", "via", self.gw_cls_addr)
        self._route_via_veth()

    def _route_via_veth(self) -> None:
        self.ipn("gw", "route", "replace", "default", "via", self.net_link_addr, "dev", GW_NET_DEV)
        self.ipn("net", "route", "replace", self.cls_net, "via", self.gw_net_addr, "dev", NET_DEV)

    def _route_via_wire(self) -> None:
        self.ipn("gw", "route", "replace", "default", "dev", GW_WIRE_DEV)
        self.ipn("net", "route", "replace", self.cls_net, "dev", NET_WIRE_DEV)

    # ----------------------------------------------------------------- commands
    def ipn(self, role: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``ip -n <ns of role> ARGS``, raising LabError on failure."""
        return ip("-n", self.ns[role], *args)

    def sysctl(self, role: str, key: str, value: str) -> None:
        """Set a per-namespace sysctl (e.g. ``net.ipv4.ping_group_range``)."""
        path = "/proc/sys/" + key.replace(".", "/")

        def write() -> None:
            with open(path, "w") as f:
                f.write(value)

        try:
            self.call(role, write)
        except OSError as e:
            raise LabError(f"sysctl {key}={value} in {self.ns[role]}: {e}") from e

    def read_sysctl(self, role: str, key: str) -> str:
        path = "/proc/sys/" + key.replace(".", "/")
        return self.call(role, lambda: Path(path).read_text().strip())

    def exec_argv(self, role: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[role], *argv]

    def run(self, role: str, argv: list[str], *, check: bool = False, timeout: float = 60,
            **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``role``'s namespace (``ip netns exec``); text output captured."""
        kw.setdefault("capture_output", True)
        out = subprocess.run(self.exec_argv(role, argv), text=True, timeout=timeout,
                             env=python_env(kw.pop("env", None)), **kw)
        if check and out.returncode != 0:
            raise LabError(f"{argv!r} in {self.ns[role]} exited {out.returncode}: {out.stderr}")
        return out

    def popen(self, role: str, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``role``'s namespace in the background; killed at ``close()``."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.exec_argv(role, argv), start_new_session=True,
                                env=python_env(kw.pop("env", None)), **kw)
        self._procs.append(proc)
        return proc

    def start_python(self, role: str, module: str, args: list[str], *, name: str,
                     ready_timeout: float = 20) -> subprocess.Popen[bytes]:
        """Run ``python -m module args`` in ``role``; wait for its ``ready`` stdout line.

        Its stderr goes to ``workdir/<name>.log`` (quoted in the error if it dies early).
        """
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as err:
            proc = self.popen(role, [sys.executable, "-m", module, *args], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=err)
        wait_ready(proc, ready_timeout, log)
        return proc

    def wait_listening(self, role: str, addr: str, port: int, timeout: float = 30,
                       proc: subprocess.Popen[bytes] | None = None) -> None:
        """Wait until a TCP connect from ``role`` to ``addr:port`` succeeds (``proc`` alive)."""

        def attempt() -> bool:
            try:
                socket.create_connection((addr, port), timeout=1).close()
            except OSError:
                return False
            return True

        deadline = time.monotonic() + timeout
        while not self.call(role, attempt):
            if proc is not None and proc.poll() is not None:
                raise LabError(f"{proc.args!r} exited {proc.returncode} before {addr}:{port} "
                               "accepted connections")
            if time.monotonic() > deadline:
                raise LabError(f"nothing accepted connections on {addr}:{port} within {timeout} s")
            time.sleep(0.1)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)
        with contextlib.suppress(ValueError):
            self._procs.remove(proc)

    def call(self, role: str, fn: Callable[..., T], *args: Any, timeout: float = 120,
             **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` in a thread that lives in ``role``'s namespace.

        Sockets it opens belong to that namespace. (Name lookups in this thread still read
        the host's /etc/resolv.conf: use addresses, or ``run`` a subprocess for DNS.)
        """
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                nsutil.setns(self.ns[role])
                box["value"] = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 (re-raised in the caller below)
                box["error"] = e

        thread = threading.Thread(target=target, name=f"netns-{role}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            name = getattr(fn, "__name__", fn)
            raise TimeoutError(f"{name} in {self.ns[role]} ran over {timeout} s")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- shaping
    def _shaped_devs(self, direction: Direction) -> list[tuple[str, list[str]]]:
        down: list[tuple[str, list[str]]] = [(GW_CLS_DEV, [])]
        up = [(GW_NET_DEV, []), (GW_WIRE_DEV, TUN_TBF_EXTRA)]
        return {"down": down, "up": up, "both": down + up}[direction]

    def shape(self, direction: Direction, rate_mbit: float) -> None:
        """tbf at ``rate_mbit`` on the gateway's egress: down → cls, up → net, or both.

        The TUN device carries ``overhead 14`` so a packet costs the same bytes as on the
        veth and true TCP goodput is ``tcp_goodput_mbps(rate_mbit)`` either way.
        """
        if rate_mbit <= 0:
            raise ValueError(f"rate_mbit={rate_mbit} must be positive")
        for dev, extra in self._shaped_devs(direction):
            self.ipn_tc("qdisc", "replace", "dev", dev, "root", "tbf",
                        "rate", f"{int(rate_mbit * 1e6)}bit", "burst", str(burst_bytes(rate_mbit)),
                        "latency", f"{TBF_LATENCY_MS}ms", *extra)
        for d in ("down", "up") if direction == "both" else (direction,):
            self.shaping[d] = rate_mbit

    def unshape(self, direction: Direction = "both") -> None:
        for dev, _ in self._shaped_devs(direction):
            out = nsutil.run_cmd(["tc", "-n", self.ns["gw"], "qdisc", "del", "dev", dev, "root"],
                                 check=False)
            if out.returncode != 0 and "No such file" not in out.stderr \
                    and "Cannot delete qdisc with handle of zero" not in out.stderr:
                raise LabError(f"tc qdisc del dev {dev}: {out.stderr.strip()}")
        for d in ("down", "up") if direction == "both" else (direction,):
            self.shaping.pop(d, None)

    def ipn_tc(self, *args: str) -> None:
        nsutil.run_cmd(["tc", "-n", self.ns["gw"], *args])

    # ----------------------------------------------------------------- the wire
    def set_path(self, delay_ms: float = 0, jitter_ms: float = 0, loss_pct: float = 0,
                 *, seed: int = 1, reorder: bool = False) -> WireSpec:
        """(Re)start the TUN wire between gw and net with this one-way delay/jitter/loss."""
        spec = WireSpec(delay_ms, jitter_ms, loss_pct, seed, reorder)
        self._stop_wire()
        log = self.workdir / "wire.log"
        argv = [sys.executable, "-m", "tests.lab.tunwire", "--ns-a", self.ns["gw"],
                "--dev-a", GW_WIRE_DEV, "--ns-b", self.ns["net"], "--dev-b", NET_WIRE_DEV,
                "--stats", str(self.wire_stats_path), *spec.argv()]
        with open(log, "wb") as err:
            self._wire = subprocess.Popen(argv, cwd=REPO_ROOT, env=python_env(None),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=err, start_new_session=True)
        wait_ready(self._wire, 20, log)
        self._route_via_wire()
        self.path = spec
        return spec

    def clear_path(self) -> None:
        """Route gw↔net over the plain veth again and stop the wire."""
        if self._wire is not None:
            self._route_via_veth()
        self._stop_wire()
        self.path = None

    @property
    def wire_stats_path(self) -> Path:
        return self.workdir / "wire-stats.json"

    def wire_stats(self, timeout: float = 3) -> dict[str, dict[str, int]]:
        """Counters of the running wire: per direction (``a_to_b`` = gw→net = up)."""
        if self._wire is None or self._wire.poll() is not None:
            raise LabError("the wire is not running (call set_path first)")
        self.wire_stats_path.unlink(missing_ok=True)
        self._wire.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while not self.wire_stats_path.exists():
            if time.monotonic() > deadline:
                raise LabError(f"the wire wrote no stats to {self.wire_stats_path} in {timeout} s")
            time.sleep(0.01)
        return json.loads(self.wire_stats_path.read_text())  # type: ignore[no-any-return]

    def _stop_wire(self) -> None:
        if self._wire is not None:
            stop_process(self._wire)
            self._wire = None

    def allow_unprivileged_icmp(self, allow: bool = True, role: str = "cls") -> None:
        """Open (or close again) ICMP echo sockets to every group in ``role``.

        The kernel default ``net.ipv4.ping_group_range = "1 0"`` refuses
        ``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`` to everyone, root included.
        """
        self.sysctl(role, "net.ipv4.ping_group_range", "0 2147483647" if allow else "1 0")

    @property
    def filters(self) -> GatewayFilters:
        """School-filter behaviours on the gateway (``tests.lab.filters``)."""
        if self._filters is None:
            from tests.lab.filters import GatewayFilters

            self._filters = GatewayFilters(self)
        return self._filters

    def reset(self) -> None:
        """Back to a plain, unshaped, unfiltered lab (between tests)."""
        if self._filters is not None:
            self._filters.clear()
        self.unshape()
        self.clear_path()
        self.allow_unprivileged_icmp(False)


@contextlib.contextmanager
def lab_context(**kw: Any) -> Iterator[Lab]:
    """``with lab_context() as lab:`` — a Lab that is removed however the block ends."""
    lab = Lab.create(**kw)
    try:
        yield lab
    finally:
        lab.close()
