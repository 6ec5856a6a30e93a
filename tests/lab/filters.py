"""School-filter behaviours on the gateway, for the path probe to be proven against.

``lab.filters`` is a ``GatewayFilters``; each method switches one behaviour on for
traffic from the classroom, and ``lab.reset()`` switches them all off (iptables flushed in
``gw``, filter processes stopped):

- ``dns(nxdomain=..., sinkhole=...)``  a filtering resolver on the gateway; every DNS query
  from cls (to any address) is redirected to it; other names are forwarded to the lab DNS.
- ``reset_tcp(port, sni=None)``        RST instead of a connection (REJECT tcp-reset), or,
  with ``sni``, RST on the TLS ClientHello naming it (xt_string).
- ``block_page(port=80)``              HTTP to the far side answered by the gateway: 403 page.
  Sinkholed names (``dns(sinkhole=...)`` to ``lab.gw_cls_addr``) land on the same page, and
  on HTTPS behind the filter's own certificate.
- ``intercept_tls(port=443)``          TLS man-in-the-middle with the filter's own CA.
- ``sever(port=8765, after_s=N)``      TCP (a WebSocket) reset N seconds after it opened.
- ``drop_udp(ports=None)``             UDP from cls dropped (all but DNS when ``ports`` is None).
- ``explicit_proxy(enforce=True)``     HTTP proxy on ``gw_cls_addr:3128`` (+ ``/proxy.pac``);
  ``enforce`` resets direct TCP from cls, so only the proxy gets out.

``filter_certs`` is the foreign CA (``certs.FILTER_CA_ORG``): trusted by nobody.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from tests.lab.certs import FILTER_CA_ORG, CertSet, make_certs
from tests.lab.nsutil import LabError

if TYPE_CHECKING:
    from tests.lab.netlab import Lab

PROXY_PORT = 3128
INTERCEPT_PORT = 8443
SEVER_PORT = 18765
GW_DNS_PORT = 53


class GatewayFilters:
    """Filter behaviours on ``lab``'s gateway; see the module docstring."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.active: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._certs: CertSet | None = None

    @property
    def filter_certs(self) -> CertSet:
        if self._certs is None:
            lab = self.lab
            self._certs = make_certs(lab.workdir / "filter-ca",
                                     [lab.far_name, f"*.{lab.lab_domain}", lab.far_addr,
                                      lab.gw_cls_addr], FILTER_CA_ORG, stem="filter")
        return self._certs

    # ------------------------------------------------------------ plumbing
    def iptables(self, *args: str) -> None:
        out = self.lab.run("gw", ["iptables", "-w", *args])
        if out.returncode != 0:
            raise LabError(f"iptables {' '.join(args)} in {self.lab.ns['gw']}: "
                           f"{out.stderr.strip()}")

    def _redirect(self, proto: str, port: int, to_port: int, addr: str | None) -> None:
        """DNAT cls traffic for ``[addr]:port`` to a gateway service on ``to_port``."""
        dst = ["-d", addr] if addr else []
        self.iptables("-t", "nat", "-A", "PREROUTING", "-i", "g0", "-p", proto, *dst,
                      "--dport", str(port), "-j", "DNAT", "--to-destination",
                      f"{self.lab.gw_cls_addr}:{to_port}")

    def _start(self, name: str, module: str, args: list[str]) -> None:
        self._procs.append(self.lab.start_python("gw", module, args, name=name))
        self.active.append(name)

    def clear(self) -> None:
        """Everything off: rules flushed, filter processes stopped."""
        for proc in self._procs:
            self.lab.stop(proc)
        self._procs.clear()
        if self.active:
            self.iptables("-F")
            self.iptables("-t", "nat", "-F")
        self.active.clear()

    # ------------------------------------------------------------ behaviours
    def dns(self, nxdomain: tuple[str, ...] | list[str] = (),
            sinkhole: dict[str, str] | None = None) -> None:
        lab = self.lab
        args = ["--bind", f"{lab.gw_cls_addr}:{GW_DNS_PORT}", "--upstream", f"{lab.dns_addr}:53"]
        for name in nxdomain:
            args += ["--nxdomain", name]
        for name, addr in (sinkhole or {}).items():
            args += ["--sinkhole", f"{name}={addr}"]
        self._start("filter-dns", "tests.lab.dnsserver", args)
        self._redirect("udp", 53, GW_DNS_PORT, None)
        self.active.append("dns")

    def reset_tcp(self, port: int = 443, sni: str | None = None, addr: str | None = None) -> None:
        match = ["-m", "string", "--string", sni, "--algo", "bm"] if sni else []
        self.iptables("-A", "FORWARD", "-i", "g0", "-p", "tcp", "-d", addr or self.lab.far_addr,
                      "--dport", str(port), *match, "-j", "REJECT", "--reject-with", "tcp-reset")
        self.active.append(f"reset:{port}")

    def block_page(self, port: int = 80, addr: str | None = None) -> None:
        lab = self.lab
        if "blockpage" not in self.active:
            self._start("blockpage", "tests.lab.gwservices",
                        ["blockpage", "--listen", f"{lab.gw_cls_addr}:80",
                         "--tls-listen", f"{lab.gw_cls_addr}:443",
                         "--cert", str(self.filter_certs.server_pem)])
        self._redirect("tcp", port, 80, addr or lab.far_addr)

    def intercept_tls(self, port: int = 443, addr: str | None = None) -> None:
        lab = self.lab
        self._start("intercept", "tests.lab.gwservices",
                    ["intercept", "--listen", f"{lab.gw_cls_addr}:{INTERCEPT_PORT}",
                     "--cert", str(self.filter_certs.server_pem)])
        self._redirect("tcp", port, INTERCEPT_PORT, addr or lab.far_addr)

    def sever(self, after_s: float, port: int = 8765, addr: str | None = None) -> None:
        lab = self.lab
        self._start("sever", "tests.lab.gwservices",
                    ["sever", "--listen", f"{lab.gw_cls_addr}:{SEVER_PORT}",
                     "--after", str(after_s)])
        self._redirect("tcp", port, SEVER_PORT, addr or lab.far_addr)

    def drop_udp(self, ports: list[int] | None = None) -> None:
        if ports is None:
            self.iptables("-A", "FORWARD", "-i", "g0", "-p", "udp", "!", "--dport", "53",
                          "-j", "DROP")
        for port in ports or []:
            self.iptables("-A", "FORWARD", "-i", "g0", "-p", "udp", "--dport", str(port),
                          "-j", "DROP")
        self.active.append("drop-udp")

    def explicit_proxy(self, enforce: bool = True) -> str:
        """Start the proxy; return its URL (``http://10.77.1.1:3128``)."""
        lab = self.lab
        self._start("proxy", "tests.lab.gwservices",
                    ["proxy", "--listen", f"{lab.gw_cls_addr}:{PROXY_PORT}"])
        if enforce:
            self.iptables("-A", "FORWARD", "-i", "g0", "-p", "tcp", "-j", "REJECT",
                          "--reject-with", "tcp-reset")
        return f"http://{lab.gw_cls_addr}:{PROXY_PORT}"
