"""What the load benchmark uploads: report batches shaped like a real agent's, cheap to stamp.

A classroom PC in a lesson (``agent/schedule.py``, ``agent/config.py`` defaults) runs the
passive probes every minute and the latency probe every 5 minutes, and uploads the
passive reports together with the next latency report (``upload_interval_s`` 300 s): one
upload carries 5 passive reports and 1 latency report. Built with the agent's own result
builders (so every metric and unit is the catalogue's), for a Wi-Fi laptop:

- passive (:func:`passive_results`): ``load`` 2 + ``battery`` 3 + ``nic`` 2 + ``wifi`` link
  10 + ``wifi_bss_load`` 2 + ``wifi_scan`` 2 = **21 measurements in 6 probe runs**
  (channel busy time needs root: skipped, as on most PCs);
- latency (:func:`latency_results`): 3 HTTPS targets (two suppliers and the collector's
  ``/speed/ping``), each dns/tcp/tls/ttfb min-p50-p95-max + jitter = 17, and ICMP
  min-p50-p95-max + jitter + loss = 6 per host: **69 measurements in 6 probe runs**.

So the default mix (:data:`AGENT_MIX`) averages 174 / 6 = 29 measurements per report. A
wired desktop sends fewer (passive: 4), a PC with more targets more; ``--measurements N``
gives every report N measurements instead (the benchmark's older uniform shape).

Bodies are rendered to JSON once; each upload only splices in the agent id and fresh
report ids (:class:`BatchStamp`), so the generator spends its CPU on sending, not on JSON.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent.probes.results import ResultBuilder, flag, summary, text, value
from agent.wire import ProbeResult, Report, to_jsonable

RID, AID = "@RID@", "@AID@"
SUPPLIERS = ("https://teams.microsoft.com/", "https://meet.google.com/",
             "https://collector.trust.example/speed/ping")
PASSIVE_PER_UPLOAD = 5
"""Passive reports per upload: every minute, uploaded with the 5-minute latency report."""


def _ok(probe: str, target: str | None, started: datetime, *parts: object) -> ProbeResult:
    r = ResultBuilder(probe, target=target, started_at=started)
    for part in parts:
        r.extend(part) if isinstance(part, list) else r.add(part)  # type: ignore[arg-type]
    return r.ok()


def passive_results(at: datetime) -> list[ProbeResult]:
    """One minute's passive sample of a Wi-Fi laptop (21 measurements)."""
    scan, iw = "iw dev wlan0 scan dump", "iw dev wlan0 link"
    return [
        _ok("load", None, at, value("cpu_busy_pct", "psutil.cpu_percent over 1.00 s", 23.5),
            value("ram_used_pct", "psutil.virtual_memory", 61.2)),
        _ok("battery", None, at, value("battery_pct", "psutil.sensors_battery", 87.0),
            flag("battery_plugged", "psutil.sensors_battery", True),
            value("battery_health_pct", "sysfs energy_full/energy_full_design", 91.4)),
        _ok("nic", "wlan0", at, value("nic_rx_mbps", "psutil.net_io_counters", 3.42),
            value("nic_tx_mbps", "psutil.net_io_counters", 0.31)),
        _ok("wifi", "wlan0", at, text("ssid_hash", "hmac-sha256(site_salt)", "9f" * 16),
            text("bssid_hash", "hmac-sha256(site_salt)", "4a" * 16),
            value("band_ghz", iw, 5.0), value("channel", iw, 36),
            value("width_mhz", iw, 80), value("rssi_dbm", iw, -61),
            value("noise_dbm", "iw dev wlan0 survey dump", -92),
            value("tx_rate_mbps", iw, 433.3), value("rx_rate_mbps", iw, 390.0),
            value("snr_db", "rssi_dbm - noise_dbm", 31)),
        _ok("wifi_bss_load", "wlan0", at,
            value("bss_station_count", f"BSS Load element ({scan})", 27),
            value("bss_channel_utilisation_pct", f"BSS Load element ({scan}), value/255",
                  38.4)),
        _ok("wifi_scan", "wlan0", at, value("visible_aps", f"{scan}: entries listed", 14),
            value("co_channel_aps", f"{scan}: others on channel 36", 3)),
    ]


def latency_results(at: datetime) -> list[ProbeResult]:
    """One latency cycle against 3 HTTPS targets with ICMP (69 measurements)."""
    out = []
    for i, url in enumerate(SUPPLIERS):
        host = url.split("/")[2]
        base = 10.0 + 7 * i
        phases = [summary(metric, method, [base * k + j for j in range(5)])
                  for metric, method, k in (("dns_ms", "getaddrinfo", 0.2),
                                            ("tcp_connect_ms", "tcp_connect", 1.0),
                                            ("tls_handshake_ms", "tls_handshake", 2.1),
                                            ("http_ttfb_ms", "http_ttfb", 3.3))]
        jitter = value("jitter_ms", "tcp_connect", 1.25, samples=5)
        out.append(_ok("latency", url, at, *phases, jitter))
        out.append(_ok("icmp", host, at, summary("icmp_rtt_ms", "icmp_echo",
                                                 [base + j for j in range(5)]),
                       value("jitter_ms", "icmp_echo", 0.8, samples=5),
                       value("loss_pct", "icmp_echo", 0.0, samples=5)))
    return out


Kind = Callable[[datetime], list[ProbeResult]]
AGENT_MIX: tuple[Kind, ...] = (*[passive_results] * PASSIVE_PER_UPLOAD, latency_results)


def uniform(measurements: int) -> Kind:
    """Reports of exactly ``measurements`` latency-like numbers (``--measurements N``)."""
    def results(at: datetime) -> list[ProbeResult]:
        ms = [value("tcp_connect_ms", "tcp_connect", 20.0 + i % 7) for i in range(measurements)]
        per_run = 7
        return [_ok("latency", f"https://target{k}.example/", at, ms[k:k + per_run])
                for k in range(0, measurements, per_run)]
    return results


def report_json(kind: Kind, at: datetime) -> tuple[str, int]:
    """One report of ``kind`` as compact JSON with :data:`RID`/:data:`AID` holes, and how
    many measurements it carries."""
    results = kind(at)
    for r in results:
        r.finished_at = r.started_at + timedelta(seconds=2)
    report = Report(report_id=uuid.UUID(int=0), agent_id=AID, created_at=at,
                    agent_version="0.1.0", results=results, trigger="scheduled")
    body = to_jsonable(report)
    body["report_id"] = RID
    return (json.dumps(body, separators=(",", ":")),
            sum(len(r.measurements) for r in results))


@dataclass(frozen=True)
class BatchStamp:
    """A batch body cut at its agent-id and report-id holes, to be stamped per upload."""

    pieces: tuple[bytes, ...]
    """The fixed text around the holes (one more piece than holes)."""
    holes: tuple[bool, ...]
    """Per hole: True for a report id (a new UUID each upload), False for the agent id."""
    reports: int
    measurements: int

    @classmethod
    def build(cls, kinds: tuple[Kind, ...], batch: int,
              at: datetime | None = None) -> BatchStamp:
        at = at or datetime.now(UTC) - timedelta(minutes=5)
        rendered = [report_json(kinds[i % len(kinds)], at) for i in range(batch)]
        whole = '{"schema_version":1,"reports":[' + ",".join(r for r, _ in rendered) + "]}"
        parts = re.split(f"({re.escape(RID)}|{re.escape(AID)})", whole)
        return cls(tuple(p.encode() for p in parts[::2]),
                   tuple(p == RID for p in parts[1::2]), batch, sum(n for _, n in rendered))

    def body(self, agent_id: str) -> bytes:
        """The batch for ``agent_id``, every report with a new random id."""
        aid = agent_id.encode()
        out = [self.pieces[0]]
        for piece, report_id in zip(self.pieces[1:], self.holes, strict=True):
            out.append(str(uuid.uuid4()).encode() if report_id else aid)
            out.append(piece)
        return b"".join(out)
