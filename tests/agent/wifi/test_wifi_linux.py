from pathlib import Path

from agent.probes.device_cmd import ToolTimeout
from agent.probes.wifi_bssload import BssLoad
from agent.probes.wifi_linux import (
    IwInterface,
    parse_bitrate,
    parse_iw_dev,
    parse_iw_link,
    parse_iw_scan,
    parse_iw_survey,
    parse_proc_net_wireless,
    parse_station_signal_avg,
    read_linux,
    survey_busy,
)
from tests.agent.device.fakes import FakeRunner, Reply, reader

read = reader(Path(__file__).parent / "fixtures")


def test_iw_dev_lists_managed_and_monitor_and_skips_the_p2p_device():
    assert parse_iw_dev(read("iw_dev_two_adapters_monitor.txt")) == [
        IwInterface("mon0", "monitor", 2437.0, 20),
        IwInterface("wlx00c0ca000003", "managed", None, None),
        IwInterface("wlp2s0", "managed", 5180.0, 80),
    ]


def test_iw_dev_6ghz_160mhz():
    assert parse_iw_dev(read("iw_dev_6ghz.txt")) == [
        IwInterface("wlp0s20f3", "managed", 5955.0, 160)]


def test_iw_dev_80_plus_80_counts_as_160():
    text = "\tInterface w0\n\t\ttype managed\n\t\tchannel 36 (5180 MHz), width: 80+80 MHz\n"
    assert parse_iw_dev(text)[0].width_mhz == 160


def test_bitrate_width_flags():
    assert parse_bitrate("866.7 MBit/s VHT-MCS 9 80MHz short GI VHT-NSS 2") == (866.7, 80)
    assert parse_bitrate("1200.9 MBit/s 80MHz HE-MCS 11 HE-NSS 2 HE-GI 0") == (1200.9, 80)
    assert parse_bitrate("72.2 MBit/s MCS 7 short GI") == (72.2, 20)
    assert parse_bitrate("(unknown)") == (None, None)


def test_link_5ghz_iw5():
    link = parse_iw_link("wlp2s0", read("iw_link_5ghz_iw5.txt"))
    assert link.connected
    assert (link.ssid, link.bssid) == ("SchoolNet", "0c:8d:db:00:00:36")
    assert (link.freq_mhz, link.channel, link.band_ghz) == (5180.0, 36, 5.0)
    assert (link.rssi_dbm, link.rssi_method) == (-55.0, "iw link signal")
    assert (link.rx_rate_mbps, link.tx_rate_mbps, link.width_mhz) == (866.7, 780.0, 80)


def test_link_6ghz_iw6_prints_freq_with_decimals():
    link = parse_iw_link("wlp0s20f3", read("iw_link_6ghz_iw6.txt"))
    assert (link.freq_mhz, link.channel, link.band_ghz) == (5955.0, 1, 6.0)
    assert (link.rx_rate_mbps, link.tx_rate_mbps) == (1200.9, 1080.6)


def test_link_not_connected():
    link = parse_iw_link("wlp2s0", read("iw_link_not_connected.txt"))
    assert not link.connected and link.state == "not connected"


def test_link_unknown_output_is_not_a_connection():
    link = parse_iw_link("wlp2s0", "something else entirely\n")
    assert not link.connected and link.state == "unrecognised iw link output"


def test_station_dump_signal_avg_and_proc_net_wireless():
    assert parse_station_signal_avg(read("iw_station_dump.txt")) == -54.0
    assert parse_proc_net_wireless(read("proc_net_wireless_no_noise.txt")) == {
        "wlp2s0": (-55.0, None)}
    assert parse_proc_net_wireless(read("proc_net_wireless_noise.txt")) == {
        "wlp2s0": (-55.0, -93.0)}


def test_scan_dump_loads_hidden_ssid_6ghz_and_stale_entry():
    bsses = parse_iw_scan(read("iw_scan_dump.txt"))
    assert [b.bssid for b in bsses] == ["0c:8d:db:00:00:36", "4a:5b:6c:00:00:24",
                                       "0c:8d:db:00:00:06", "7e:00:00:00:06:e5"]
    ours, hidden, two_four, six = bsses
    assert ours.associated and ours.ssid == "SchoolNet"
    assert ours.load == BssLoad(23, 115, 12500)
    assert ours.load.utilisation_pct == 45.1
    assert (ours.channel, ours.band_ghz, ours.signal_dbm) == (36, 5.0, -55.0)
    assert hidden.ssid is None and hidden.load is None and hidden.channel == 36
    assert two_four.load == BssLoad(9, 204, 0) and two_four.channel == 6
    assert (six.channel, six.band_ghz, six.load) == (1, 6.0, None)


def test_survey_busy_from_two_dumps():
    first = parse_iw_survey(read("iw_survey_dump_t0.txt"))
    second = parse_iw_survey(read("iw_survey_dump_t1.txt"))
    assert [e.freq_mhz for e in first] == [5180.0, 5200.0, 5220.0]
    busy, noise, reason = survey_busy(first, second)
    assert reason is None and noise == -92.0
    assert busy is not None and busy.busy_pct == 62.0
    assert busy.method == "iw survey dump Δbusy/Δactive over 1000 ms"


def test_survey_counters_that_do_not_move_fall_back_to_cumulative():
    first = parse_iw_survey(read("iw_survey_dump_t0.txt"))
    busy, _, _ = survey_busy(first, first)
    assert busy is not None and busy.busy_pct == 25.0
    assert "cumulative over 1200000 ms" in busy.method


def test_survey_without_busy_time_or_in_use_channel():
    no_busy = parse_iw_survey("Survey data from w\n\tfrequency:\t\t\t2412 MHz [in use]\n"
                              "\tnoise:\t\t\t\t-90 dBm\n")
    assert survey_busy(no_busy, None) == (None, -90.0,
                                          "the driver reports no channel active/busy time")
    not_in_use = parse_iw_survey(read("iw_survey_dump_t0.txt").replace(" [in use]", ""))
    assert survey_busy(not_in_use, None)[2] == "survey dump has no channel marked [in use]"


def _raise_timeout(argv: object) -> None:
    raise ToolTimeout("iw", 15.0)


def _runner(**overrides: Reply | list[Reply]) -> FakeRunner:
    replies: dict[tuple[str, ...], Reply | list[Reply]] = {
        ("iw", "dev"): Reply(read("iw_dev_two_adapters_monitor.txt")),
        ("iw", "dev", "wlp2s0", "link"): Reply(read("iw_link_5ghz_iw5.txt")),
        ("iw", "dev", "wlp2s0", "station", "dump"): Reply(read("iw_station_dump.txt")),
        ("iw", "dev", "wlp2s0", "scan", "dump"): Reply(read("iw_scan_dump.txt")),
        ("iw", "dev", "wlp2s0", "survey", "dump"): [Reply(read("iw_survey_dump_t0.txt")),
                                                    Reply(read("iw_survey_dump_t1.txt"))],
        ("iw", "dev", "wlx00c0ca000003", "link"): Reply(read("iw_link_not_connected.txt")),
        ("iw", "dev", "wlx00c0ca000003", "scan", "dump"): Reply(""),
        ("iw", "dev", "wlx00c0ca000003", "survey", "dump"): Reply(
            "", "command failed: Operation not supported (-95)\n", 161),
    }
    for key, reply in overrides.items():
        replies[tuple(key.split())] = reply
    return FakeRunner(replies)


def _proc(tmp_path: Path, name: str) -> Path:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "wireless").write_text(read(name))
    return tmp_path


def test_read_linux_two_adapters(tmp_path: Path):
    slept: list[float] = []
    reading = read_linux(_runner(), _proc(tmp_path, "proc_net_wireless_no_noise.txt"),
                         survey_interval_s=1.5, sleep=slept.append)
    assert reading.reason is None
    usb, internal = reading.adapters
    assert usb.link.interface == "wlx00c0ca000003" and not usb.link.connected
    assert usb.scan is None
    assert usb.scan_reason == "no cached scan results, and a fresh scan (iw scan) needs root"
    assert usb.busy is None
    assert usb.busy_reason == "iw survey dump failed: command failed: Operation not supported " \
                              "(-95)"
    link = internal.link
    assert (link.rssi_dbm, link.rssi_method) == (-54.0, "iw station dump signal avg")
    assert (link.noise_dbm, link.noise_method) == (-92.0, "iw survey dump noise (in-use "
                                                          "channel)")
    assert (link.width_mhz, link.width_method) == (80, "iw dev channel width")
    assert internal.busy is not None and internal.busy.busy_pct == 62.0
    assert internal.scan is not None and len(internal.scan.bsses) == 4
    assert slept == [1.5]  # the USB adapter has no survey, so no second dump


def test_read_linux_noise_from_proc_wins(tmp_path: Path):
    reading = read_linux(_runner(), _proc(tmp_path, "proc_net_wireless_noise.txt"),
                         interface="wlp2s0", sleep=lambda s: None)
    (adapter,) = reading.adapters
    assert (adapter.link.noise_dbm, adapter.link.noise_method) == (
        -93.0, "/proc/net/wireless noise")


def test_read_linux_root_runs_a_fresh_scan_when_nothing_is_cached(tmp_path: Path):
    runner = _runner(**{"iw dev wlx00c0ca000003 scan": Reply(read("iw_scan_dump.txt"))})
    reading = read_linux(runner, tmp_path, interface="wlx00c0ca000003", is_root=True,
                         sleep=lambda s: None)
    assert reading.adapters[0].scan is not None
    assert reading.adapters[0].scan.method == "iw scan"
    assert ("iw", "dev", "wlx00c0ca000003", "scan") in runner.calls


def test_read_linux_odd_cases(tmp_path: Path):
    missing = FakeRunner({}, missing={"iw"})
    assert read_linux(missing, tmp_path).reason == (
        "iw is not installed (install the 'iw' package to measure Wi-Fi on Linux)")
    timeout = FakeRunner({("iw", "dev"): Reply(effect=_raise_timeout)})
    assert read_linux(timeout, tmp_path).reason == (
        "cannot list Wi-Fi adapters: iw did not finish within 15 s")
    no_kernel = FakeRunner({("iw", "dev"): Reply("", read("iw_dev_no_nl80211.stderr.txt"), 1)})
    assert read_linux(no_kernel, tmp_path).reason == (
        "no Wi-Fi adapter: this kernel has no nl80211 (cfg80211) support")
    none = FakeRunner({("iw", "dev"): Reply("")})
    assert read_linux(none, tmp_path).reason == (
        "no Wi-Fi adapter found (iw dev lists no managed interface)")
    wrong = read_linux(_runner(), tmp_path, interface="wlan9")
    assert wrong.reason == "no managed Wi-Fi interface named 'wlan9' (iw dev)"
    broken = FakeRunner({("iw", "dev"): Reply("", "command failed: No buffer space (-105)", 1)})
    result = read_linux(broken, tmp_path)
    assert result.failed and result.reason == (
        "iw dev failed: command failed: No buffer space (-105)")
