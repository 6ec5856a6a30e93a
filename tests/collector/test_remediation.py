"""Plain-language remediation: exact sentences for representative findings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from collector.services.profiles import Profile, Requirement, Source
from collector.services.readiness import evaluate
from collector.services.readiness_samples import group_by_metric
from collector.services.remediation import Finding, RoomWifi, remediation, room_wifi
from collector.services.rows import MeasurementRow

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SRC = Source("test source", "P")
BUSY = RoomWifi("12", "3", 80.0, 45.0, 60.0)
CALM = RoomWifi("Room 7", None, 20.0, 12.0, 0.0)
LATENCY_ADVICE = (
    "Compare the gateway round trip from the path probe in the same room: if it is low, the "
    "delay is beyond the school, so ask the filtering provider or ISP to route this traffic "
    "directly (no proxy, no detour through a central filter); if it is high, the room's LAN "
    "or Wi-Fi is congested.")
BUSY_SENTENCE = ("The Wi-Fi access point in room 12 advertises 80 % channel use with 45 "
                 "stations in period 3 — move devices to 5 GHz, turn off the guest network in "
                 "that room or add an access point.")
BANDWIDTH_ADVICE = ("Move backups and updates out of lesson times, check the room's access "
                    "point and uplink, or raise the school's internet bandwidth.")


def req(**changes: object) -> Requirement:
    base = Requirement(id="x", title="x", metric="tcp_connect_ms", stat="p50", statistic="p95",
                       op="<", threshold=100.0, unit="ms", severity="must", source=SRC,
                       targets=("teams.microsoft.com",))
    return replace(base, **changes)  # type: ignore[arg-type]


def flag(metric: str, targets: tuple[str, ...], threshold: float = 0.0) -> Requirement:
    return req(metric=metric, unit="bool", op="==", threshold=threshold, stat="value",
               statistic="max", targets=targets)


CASES = {
    "wifi load (the issue's example)": (
        Finding(req(metric="bss_channel_utilisation_pct", unit="%", threshold=50.0,
                    stat="value", statistic="p50", targets=()), "fail", 80.0, "%", 50.0,
                room="12", room_value=80.0, period="3", period_value=80.0, wifi=BUSY),
        BUSY_SENTENCE),
    "latency in a room with a busy access point": (
        Finding(req(), "fail", 150.0, "ms", 100.0, room="12", room_value=150.0, period="3",
                period_value=170.0, wifi=BUSY),
        "In room 12, the round-trip time (TCP connect) to teams.microsoft.com is 150 ms "
        "(p95); it should be below 100 ms. Across the site, the worst period is period 3 "
        "(170 ms). "
        f"{LATENCY_ADVICE} {BUSY_SENTENCE}"),
    "latency close to the limit with a calm access point": (
        Finding(req(), "warn", 95.0, "ms", 100.0, room="Room 7", room_value=95.0, wifi=CALM),
        "In Room 7, the round-trip time (TCP connect) to teams.microsoft.com is 95 ms (p95); "
        f"it should be below 100 ms, and it is close to that limit. {LATENCY_ADVICE} The Wi-Fi "
        "access point in Room 7 advertises 20 % channel use with 12 stations, so the Wi-Fi is "
        "probably not the cause."),
    "loss": (
        Finding(req(metric="loss_pct", unit="%", threshold=1.0, stat="value"), "fail", 3.0, "%",
                1.0, room="Room 7", room_value=3.0),
        "In Room 7, the packet loss to teams.microsoft.com is 3 % (p95); it should be below "
        "1 %. Loss and jitter come from a busy or weak Wi-Fi link or a saturated uplink: check "
        "the access point and the uplink at that time, and give real-time media priority "
        "(QoS) at the school's edge."),
    "dns": (
        Finding(req(metric="dns_ms", threshold=50.0), "fail", 120.0, "ms", 50.0, wifi=BUSY),
        "Across the site, the DNS lookup time to teams.microsoft.com is 120 ms (p95); it "
        "should be below 50 ms. Check the school's DNS server or forwarder: a slow resolver "
        "delays every new connection."),
    "site bandwidth": (
        Finding(req(metric="download_mbps", unit="Mbps", op=">=", stat="value",
                    statistic="p10", targets=()), "fail", 40.0, "Mbps", 100.0),
        f"Across the site, the download speed is 40 Mbps (p10); it should be at least "
        f"100 Mbps. {BANDWIDTH_ADVICE}"),
    "per-student bandwidth from a room test": (
        Finding(req(metric="download_mbps", unit="Mbps", op=">=", threshold=1.0, stat="value",
                    statistic="min", targets=("*",), per_student=True, scope="room"),
                "fail", 20.0, "Mbps", 30.0, room="Room 12", room_value=20.0, class_size=30,
                basis="room test"),
        f"Room 12 carries 20 Mbps download in total (measured by a room test), but 30 "
        f"students need 30 Mbps (1 Mbps each). {BANDWIDTH_ADVICE}"),
    "per-student bandwidth from an estimate": (
        Finding(req(metric="upload_mbps", unit="Mbps", op=">=", threshold=0.2, stat="value",
                    statistic="min", targets=("*",), per_student=True, scope="room"),
                "fail", 4.0, "Mbps", 6.0, room="Lab 2", room_value=4.0, class_size=30,
                basis="estimate from single-device tests", site="Hill School"),
        "Lab 2 carries 4 Mbps upload in total (estimated from single-device tests), but 30 "
        "students need 6 Mbps (0.2 Mbps each). Run a room test for a measured figure: "
        "classprobe collector room-test --site 'Hill School' --room 'Lab 2'. "
        f"{BANDWIDTH_ADVICE}"),
    "tls interception": (
        Finding(flag("tls_intercepted", ("kahoot.it", "*.kahoot.it")), "fail", 1.0, "bool",
                0.0, room="Library", room_value=1.0, devices=6, failing_devices=2),
        "The school's filter intercepts TLS to kahoot.it, *.kahoot.it in Library (2 of 6 "
        "device(s)). Add these hosts to the filter's TLS-inspection (decryption) exemption "
        "list: the product rejects certificates it does not expect."),
    "blocking": (
        Finding(flag("blocked", ("play.kahoot.it",)), "fail", 1.0, "bool", 0.0, devices=4,
                failing_devices=4),
        "The web filter or firewall blocks play.kahoot.it (4 of 4 device(s)). Allow these "
        "hosts (TCP 443) and check which category the filter puts them in."),
    "websocket": (
        Finding(req(metric="websocket_hold_s", unit="s", op=">=", threshold=60.0, stat="value",
                    statistic="min", targets=("play.kahoot.it",)), "fail", 30.0, "s", 60.0,
                room="Room 7", room_value=30.0),
        "WebSocket connections to play.kahoot.it in Room 7 stay open 30 s; they need at least "
        "60 s. Let wss:// traffic to these hosts bypass the proxy, or raise the proxy's idle "
        "timeout."),
    "udp": (
        Finding(flag("udp_reachable", ("stun.l.google.com",), 1.0), "fail", 0.0, "bool", 1.0),
        "UDP to stun.l.google.com gets no answer. Allow outbound UDP to these hosts in the "
        "firewall: without it real-time media falls back to TCP and quality drops."),
    "device memory": (
        Finding(req(metric="ram_total_gb", unit="GB", op=">=", threshold=4.0, stat="value",
                    statistic="min", targets=(), scope="device"), "fail", 2.0, "GB", 4.0,
                room="Room 7", room_value=2.0, devices=30, failing_devices=3,
                worst_device="0f3a9c21-aaaa", worst_device_value=2.0),
        "3 of 30 device(s) fall short: memory should be at least 4 GB; the worst, 0f3a9c21 "
        "in Room 7, has 2 GB. Upgrade or replace these devices, or keep them out of lessons "
        "that use this product."),
    "share of readings": (
        Finding(req(statistic="share", share_min_pct=95.0), "fail", 90.0, "%", 100.0,
                room="Room 7", room_value=88.0, period="P2", period_value=80.0),
        "In Room 7, only 88 % of readings of the round-trip time (TCP connect) to "
        "teams.microsoft.com are below 100 ms; at least 95 % should be. Across the site, the "
        "worst period is "
        f"period P2 (80 %). {LATENCY_ADVICE}"),
    "weak signal, calm access point: no contradicting Wi-Fi sentence": (
        Finding(req(metric="rssi_dbm", unit="dBm", op=">=", threshold=-67.0, stat="value",
                    statistic="p50", targets=()), "fail", -75.0, "dBm", -67.0, room="Room 7",
                room_value=-75.0, wifi=CALM),
        "In Room 7, the Wi-Fi signal is -75 dBm (p50); it should be at least -67 dBm. Add an "
        "access point nearer the room or move one, and check for neighbouring access points "
        "on the same channel."),
    "stations over the limit, all on 5 GHz already": (
        Finding(req(metric="bss_station_count", unit="count", op="<=", threshold=20.0,
                    stat="value", statistic="max", targets=()), "fail", 30.0, "count", 20.0,
                room="Room 7", room_value=30.0, wifi=RoomWifi("Room 7", None, 20.0, 30.0, 0.0)),
        "The Wi-Fi access point in Room 7 advertises 20 % channel use with 30 stations — turn "
        "off the guest network in that room or add an access point."),
    "memory close to the limit, no device failing": (
        Finding(req(metric="ram_total_gb", unit="GB", op=">=", threshold=4.0, stat="value",
                    statistic="min", targets=(), warn_within_pct=10.0), "warn", 4.2, "GB",
                4.0, devices=30),
        "Across the site, memory is 4.2 GB (min); it should be at least 4 GB, and it is close "
        "to that limit. Upgrade or replace these devices, or keep them out of lessons that "
        "use this product."),
    "own text after the access point's figures": (
        Finding(req(metric="bss_channel_utilisation_pct", unit="%", threshold=50.0,
                    stat="value", statistic="p50", targets=(),
                    remediation="Call the trust's network team."), "fail", 80.0, "%", 50.0,
                room="12", room_value=80.0, wifi=BUSY),
        "The Wi-Fi access point in room 12 advertises 80 % channel use with 45 stations in "
        "period 3. Call the trust's network team."),
    "the requirement's own text replaces the advice": (
        Finding(req(remediation="Ask Acme support to allow-list the school's IP address."),
                "fail", 150.0, "ms", 100.0, room="12", room_value=150.0),
        "In room 12, the round-trip time (TCP connect) to teams.microsoft.com is 150 ms (p95); "
        "it should be below 100 ms. Ask Acme support to allow-list the school's IP address."),
}


@pytest.mark.parametrize("case", list(CASES))
def test_remediation_sentences(case: str) -> None:
    finding, expected = CASES[case]
    assert remediation(finding) == expected


def _row(metric: str, value: float, room: str, period: str | None, minute: int,
         unit: str = "%", agent: str = "a1") -> MeasurementRow:
    return MeasurementRow(time=T0 + timedelta(minutes=minute), agent_id=agent, room=room,
                          probe="wifi", target=None, metric=metric, value=value, unit=unit,
                          method="iw", report_id=f"r{minute}", period=period,
                          in_lesson=period is not None)


def test_room_wifi_prefers_the_worst_period_then_the_whole_room() -> None:
    rows = ([_row("bss_channel_utilisation_pct", v, "12", "3", i) for i, v in
             enumerate([70.0, 80.0, 90.0])]
            + [_row("bss_channel_utilisation_pct", 10.0, "12", None, 10 + i) for i in range(5)]
            + [_row("bss_station_count", 45.0, "12", "3", 20, unit="count")]
            + [_row("band_ghz", b, "12", "3", 30 + i, unit="GHz") for i, b in
               enumerate([2.4, 5.0, 5.0, 5.0])])
    by_metric = group_by_metric(rows)
    assert room_wifi(by_metric, "12", "3") == RoomWifi("12", "3", 80.0, 45.0, 25.0)
    # no readings in period 1: the medians of the whole room (10 of 10×5, 70, 80, 90)
    assert room_wifi(by_metric, "12", "1") == RoomWifi("12", None, 10.0, 45.0, 25.0)
    assert room_wifi(by_metric, "Room 9", None) is None


def test_evaluation_fills_the_issue_example_from_the_rows() -> None:
    util = req(metric="bss_channel_utilisation_pct", unit="%", threshold=50.0, stat="value",
               statistic="p50", targets=(), window="in_lesson", min_samples=3)
    rows = ([_row("bss_channel_utilisation_pct", 80.0, "12", "3", i) for i in range(3)]
            + [_row("bss_station_count", 45.0, "12", "3", 5, unit="count")]
            + [_row("bss_channel_utilisation_pct", 30.0, "7", "3", 10 + i, agent="a2")
               for i in range(3)])
    profile = Profile(id="wifi", title="Wi-Fi", description="", note="", source=SRC,
                      requirements=(util,), version="1")
    (v,) = evaluate(profile, rows, [], T0).requirements
    assert v.status == "fail"
    assert v.remediation == (
        "The Wi-Fi access point in room 12 advertises 80 % channel use with 45 stations in "
        "period 3 — move devices to 5 GHz, turn off the guest network in that room or add an "
        "access point.")
