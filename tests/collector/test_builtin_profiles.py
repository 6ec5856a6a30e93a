"""Built-in profiles: every one loads, and every number matches the research it cites.

``CITED`` is typed a second time from ``research/standards.md`` (each entry quotes the
line it comes from): a typo in a profile file, or a requirement nobody cited, fails here.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from collector.services.profiles import BUILTIN_DIR, Profile, load_profiles, profile_targets


class Cited(NamedTuple):
    metric: str
    op: str
    threshold: float
    unit: str
    severity: str
    confidence: str
    quote: str
    """The standards.md text the number comes from (§ and the words)."""


GB_AS_GIB = 64e9 / 2**30
"""Windows 11's "64 GB" of storage (decimal, as drives are sold) in the catalogue's GiB."""

DFE = "§1.1 broadband internet standards (P)"
BLUEBOOK = "§2.6 College Board Bluebook, minimum bandwidth per student testing at the same time"
CHROMEOS = "§3.5 (P): a hostname allow-list must be exempt from inspection"

CITED: dict[tuple[str, str], Cited] = {
    ("dfe-broadband-primary", "download"): Cited(
        "download_mbps", ">=", 100, "Mbps", "must", "P",
        f"{DFE}: download_capacity (primary school) | >= | 100 | Mbps"),
    ("dfe-broadband-primary", "upload"): Cited(
        "upload_mbps", ">=", 30, "Mbps", "must", "P",
        f"{DFE}: upload_capacity (primary school) | >= | 30 | Mbps"),
    ("dfe-broadband-secondary", "download"): Cited(
        "download_mbps", ">=", 1000, "Mbps", "must", "P",
        f"{DFE}: download_capacity (secondary, all-through, FE) | >= | 1000 | Mbps "
        "(\"capacity to deliver 1Gbps\")"),
    ("dfe-broadband-secondary", "upload"): Cited(
        "upload_mbps", ">=", 1000, "Mbps", "must", "P",
        f"{DFE}: upload_capacity (secondary, all-through, FE) | >= | 1000 | Mbps"),
    ("microsoft-teams-media", "rtt"): Cited(
        "tcp_connect_ms", "<", 100, "ms", "must", "P",
        "§3.1 Teams, client → Microsoft edge: | RTT | < 100 | < 60 | ms |"),
    ("microsoft-teams-media", "jitter"): Cited(
        "jitter_ms", "<", 30, "ms", "must", "P",
        "§3.1 Teams, client → Microsoft edge: | inter-arrival jitter | < 30 in any 15 s "
        "| < 15 in any 15 s | ms |"),
    ("microsoft-teams-media", "loss"): Cited(
        "loss_pct", "<", 1, "%", "must", "P", "§3.1 Teams: | packet loss | < 1 in any 15 s |"),
    ("google-meet", "reach"): Cited(
        "blocked", "==", 0, "bool", "must", "P",
        "§3.3 Meet: Domains to allow on 443 (examples): meet.google.com, accounts.google.com…"),
    ("google-meet", "udp-media"): Cited(
        "udp_reachable", "==", 1, "bool", "should", "P",
        "§3.3 Meet: Media: outbound UDP 3478 and 19302–19309"),
    ("google-meet", "no-inspection"): Cited(
        "tls_intercepted", "==", 0, "bool", "should", "P",
        "§3.3 Meet: avoid proxies, packet inspection, protocol analyzers and QoS"),
    ("google-meet", "latency-hd"): Cited(
        "icmp_rtt_ms", "<", 50, "ms", "should", "S",
        "§3.3 Meet HD quality (S): latency < 50 ms when pinging 8.8.8.8"),
    ("google-meet", "upload-hd"): Cited(
        "upload_mbps", ">=", 3.2, "Mbps", "should", "S",
        "§3.3 Meet HD quality (S): outbound 3.2 Mbps per participant"),
    ("google-meet", "download-hd"): Cited(
        "download_mbps", ">=", 4.0, "Mbps", "should", "S",
        "§3.3 Meet HD quality (S): inbound 2.6 / 3.2 / 4.0 Mbps for 2 / 5 / 10 participants"),
    ("kahoot-live", "reach"): Cited(
        "blocked", "==", 0, "bool", "must", "P",
        "§3.6 Kahoot: Allow *.kahoot.it on TCP 80/443. Test reachability of kahoot.it, "
        "play.kahoot.it, create.kahoot.it and apis.kahoot.it"),
    ("kahoot-live", "websocket"): Cited(
        "websocket_hold_s", ">=", 60, "s", "must", "P",
        "§3.6 Kahoot: checks that a WebSocket connection stays open for at least one minute"),
    ("kahoot-live", "no-interception"): Cited(
        "tls_intercepted", "==", 0, "bool", "should", "P",
        "§3.6 Kahoot: a proxy that replaces Kahoot's SSL certificate causes certificate errors"),
    ("classroom-wifi", "rssi"): Cited(
        "rssi_dbm", ">=", -67, "dBm", "must", "P", "§2.5 rssi_at_cell_edge | >= | -67 | dBm"),
    ("classroom-wifi", "snr"): Cited(
        "snr_db", ">=", 25, "dB", "should", "P", "§2.5 snr | >= | 25 | dB"),
    ("classroom-wifi", "noise"): Cited(
        "noise_dbm", "<=", -92, "dBm", "should", "P", "§2.5 noise_floor | <= | -92 | dBm"),
    ("classroom-wifi", "channel-utilisation"): Cited(
        "bss_channel_utilisation_pct", "<", 40, "%", "should", "P",
        "§2.5 channel_utilization | < | 50 (7925G) / 40 (BE4000) | %"),
    ("classroom-wifi", "retries"): Cited(
        "retry_pct", "<", 20, "%", "should", "S",
        "§2.5 802.11_retries | < | 20 | % | per radio | recommend | S"),
    ("classroom-wifi", "devices-per-ap"): Cited(
        "bss_station_count", "<=", 40, "count", "should", "P",
        "§2.6 College Board / AIR Secure Browser: Devices per WAP: 20 for 802.11g, 40 for "
        "802.11n"),
    ("college-board-bluebook-sat-weekend", "download"): Cited(
        "download_mbps", ">=", 0.1, "Mbps", "must", "P", f"{BLUEBOOK}: SAT Weekend | 0.1 Mbps"),
    ("college-board-bluebook-sat-weekend", "upload"): Cited(
        "upload_mbps", ">=", 0.1, "Mbps", "must", "P",
        f"{BLUEBOOK}: SAT Weekend | 0.1 Mbps | 0.1 Mbps"),
    ("college-board-bluebook-sat-school-day", "download"): Cited(
        "download_mbps", ">=", 0.2, "Mbps", "must", "P",
        f"{BLUEBOOK}: SAT School Day / PSAT-related | 0.2 Mbps"),
    ("college-board-bluebook-sat-school-day", "upload"): Cited(
        "upload_mbps", ">=", 0.2, "Mbps", "must", "P",
        f"{BLUEBOOK}: SAT School Day / PSAT-related | 0.2 Mbps | 0.2 Mbps"),
    ("college-board-bluebook-ap", "download"): Cited(
        "download_mbps", ">=", 1, "Mbps", "must", "P", f"{BLUEBOOK}: AP Exams | 1 Mbps"),
    ("college-board-bluebook-ap", "upload"): Cited(
        "upload_mbps", ">=", 0.2, "Mbps", "must", "P",
        f"{BLUEBOOK}: AP Exams | 1 Mbps | 0.2 Mbps"),
    ("windows-11-device", "cores"): Cited(
        "cpu_physical_cores", ">=", 2, "count", "must", "S",
        "§3.9 Windows 11 (S): compatible 64-bit CPU at ≥1 GHz with ≥2 cores"),
    ("windows-11-device", "ram"): Cited(
        "ram_total_gb", ">=", 4, "GB", "should", "S", "§3.9 Windows 11 (S): 4 GB RAM"),
    ("windows-11-device", "storage"): Cited(
        "disk_total_gb", ">=", GB_AS_GIB, "GB", "should", "S",
        "§3.9 Windows 11 (S): 64 GB storage (converted: 64e9 bytes in GiB)"),
    ("windows-11-device", "cpu-speed"): Cited(
        "cpu_mhz", ">=", 1000, "MHz", "should", "S",
        "§3.9 Windows 11 (S): CPU at ≥1 GHz (= 1000 MHz)"),
}

CHROMEOS_HOSTS = {
    "accounts": ("accounts.google.com", "accounts.google.*"),
    "chromeos-ca": ("chromeos-ca.gstatic.com",),
    "clients3": ("clients3.google.com",),
    "connectivitycheck": ("connectivitycheck.gstatic.com",),
    "dl": ("dl.google.com",),
    "m": ("m.google.com",),
    "tools": ("tools.google.com",),
    "edgedl": ("edgedl.me.gvt1.com",),
    "www-gstatic": ("www.gstatic.com",),
    "ssl-gstatic": ("ssl.gstatic.com",),
    "aratea-pa": ("aratea-pa.googleapis.com",),
    "youtubeeducation": ("youtubeeducation.com",),
}
"""§3.5: accounts.google.com, accounts.google.[cc], chromeos-ca.gstatic.com,
clients3.google.com, connectivitycheck.gstatic.com, dl.google.com, m.google.com,
tools.google.com, edgedl.me.gvt1.com, www.gstatic.com, ssl.gstatic.com,
aratea-pa.googleapis.com, youtubeeducation.com."""

for _rid in CHROMEOS_HOSTS:
    CITED["chromeos-tls-inspection", _rid] = Cited(
        "tls_intercepted", "==", 0, "bool", "must", "P", CHROMEOS)

EXPECTED_PROFILES = {
    "chromeos-tls-inspection", "classroom-wifi", "college-board-bluebook-ap",
    "college-board-bluebook-sat-school-day", "college-board-bluebook-sat-weekend",
    "dfe-broadband-primary", "dfe-broadband-secondary", "google-meet", "kahoot-live",
    "microsoft-teams-media", "windows-11-device",
}


@pytest.fixture(scope="module")
def builtins() -> dict[str, Profile]:
    return load_profiles()


def test_every_builtin_loads_with_a_version_and_a_cited_source(
        builtins: dict[str, Profile]) -> None:
    assert set(builtins) == EXPECTED_PROFILES
    assert len(list(BUILTIN_DIR.glob("*.toml"))) == len(EXPECTED_PROFILES)
    for profile in builtins.values():
        assert profile.version == "2026.1", profile.id
        assert profile.source.confidence in ("P", "S"), profile.id
        assert profile.source.citation.strip(), profile.id
        assert len(profile.note) > 100, f"{profile.id}: the note says what is not encoded"


def test_every_requirement_is_cited_with_its_exact_number(builtins: dict[str, Profile]) -> None:
    got = {(p.id, r.id): (r.metric, r.op, r.threshold, r.unit, r.severity, r.source.confidence)
           for p in builtins.values() for r in p.requirements}
    assert got == {key: cited[:6] for key, cited in CITED.items()}


def test_chromeos_exempt_hosts_one_requirement_each(builtins: dict[str, Profile]) -> None:
    chromeos = builtins["chromeos-tls-inspection"]
    assert {r.id: r.targets for r in chromeos.requirements} == CHROMEOS_HOSTS
    assert all(r.statistic == "max" for r in chromeos.requirements)
    assert profile_targets(chromeos) == [f"https://{hosts[0]}/"
                                         for hosts in CHROMEOS_HOSTS.values()]


@pytest.mark.parametrize(("profile_id", "window"), [
    ("college-board-bluebook-sat-weekend", "out_of_hours"),
    ("college-board-bluebook-sat-school-day", "in_lesson"),
    ("college-board-bluebook-ap", "in_lesson"),
])
def test_bluebook_is_per_student_per_room_in_test_like_hours(
        builtins: dict[str, Profile], profile_id: str, window: str) -> None:
    profile = builtins[profile_id]
    assert profile.class_size == 30
    assert [(r.metric, r.per_student, r.scope, r.window) for r in profile.requirements] == [
        ("download_mbps", True, "room", window), ("upload_mbps", True, "room", window)]


def test_windows_and_choices_that_follow_the_sources(builtins: dict[str, Profile]) -> None:
    # Microsoft: the Teams targets apply under peak load
    assert {r.window for r in builtins["microsoft-teams-media"].requirements} == {"in_lesson"}
    # DfE capacity: the site's best goodput to internet test servers is a lower bound
    for profile_id in ("dfe-broadband-primary", "dfe-broadband-secondary"):
        reqs = builtins[profile_id].requirements
        assert {(r.statistic, r.scope, r.targets) for r in reqs} == {
            ("max", "site", ("*speedtest*",))}
        assert "lower bound" in builtins[profile_id].note
    kahoot = builtins["kahoot-live"]
    assert "wss://play.kahoot.it/cometd" in profile_targets(kahoot)
    assert "no bandwidth or latency figure" in kahoot.note
    wifi = builtins["classroom-wifi"]
    assert "not a DfE standard" in wifi.description
    assert {r.id: r.scope for r in wifi.requirements} == {
        "rssi": "device", "snr": "device", "noise": "device", "channel-utilisation": "room",
        "retries": "room", "devices-per-ap": "room"}
    windows = builtins["windows-11-device"]
    assert {(r.scope, r.min_samples) for r in windows.requirements} == {("device", 1)}
    assert "TPM 2.0" in windows.note
