import subprocess

import pytest

from agent.probes.proxy_check import (
    ProxySetting,
    check_proxy,
    detect,
    from_environ,
    parse_gsettings,
    parse_reg_connections,
    parse_reg_internet_settings,
    parse_reg_values,
    parse_scutil,
    safe_pac,
    safe_proxy,
)
from agent.wire import new_report, semantic_errors, to_jsonable
from tests.agent.path.conftest import FIXTURES

SECRETS = ("hunter2", "teacher", "SECRETKEY", "abc123", "bob", "s3cret", "user:pw", "id=77")


def recorded(name: str) -> str:
    return (FIXTURES / "proxy" / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(("raw", "safe"), [
    ("http://bob:s3cret@proxy.school.lan:3128/", "http://proxy.school.lan:3128"),
    ("proxy.school.lan:8080", "http://proxy.school.lan:8080"),
    ("socks5h://[2001:db8::5]:1080", "socks5h://[2001:db8::5]:1080"),
    ("https://proxy.example", "https://proxy.example"),
])
def test_safe_proxy_drops_credentials(raw: str, safe: str):
    assert safe_proxy(raw) == safe


def test_safe_pac_drops_user_info_and_query():
    assert safe_pac("https://user:pw@pac.example:8443/a/school.pac?key=K") == \
        "https://pac.example:8443/a/school.pac"


def test_environment():
    env = {"HTTPS_PROXY": "http://bob:s3cret@proxy.school.lan:3128", "no_proxy": "localhost,.lan",
           "PATH": "/usr/bin", "http_proxy": ""}
    assert from_environ(env) == [
        ProxySetting("env", "env", "HTTPS_PROXY=http://proxy.school.lan:3128"),
        ProxySetting("env", "env", "no_proxy=localhost,.lan"),
    ]
    assert from_environ({"NO_PROXY": "*"}) == []  # NO_PROXY alone is no proxy


def test_gsettings_auto_manual_none():
    assert parse_gsettings(recorded("gsettings-auto.txt")) == [
        ProxySetting("gsettings", "pac", "pac=http://wpad.school.lan/proxy.pac")]
    assert parse_gsettings(recorded("gsettings-manual.txt")) == [
        ProxySetting("gsettings", "manual", "http=proxy.school.lan:3128"),
        ProxySetting("gsettings", "manual", "https=proxy.school.lan:3129")]
    assert parse_gsettings(recorded("gsettings-none.txt")) == []
    auto_wpad = recorded("gsettings-auto.txt").replace(
        "'http://wpad.school.lan/proxy.pac?key=SECRETKEY'", "''")
    assert parse_gsettings(auto_wpad) == [ProxySetting("gsettings", "pac", "wpad=auto-detect")]


def test_windows_registry():
    text = recorded("reg-internet-settings.txt")
    values = parse_reg_values(text)
    assert values["ProxyEnable"] == "0x1"
    assert values["ProxyOverride"] == "<local>;*.school.lan"
    assert "5.0" not in values  # subkeys are not values
    assert parse_reg_internet_settings(text) == [
        ProxySetting("windows_registry", "manual", "http=proxy.school.lan:3128"),
        ProxySetting("windows_registry", "manual", "https=proxy.school.lan:3129"),
        ProxySetting("windows_registry", "pac", "pac=http://wpad.school.lan/proxy.pac"),
    ]
    disabled = text.replace("ProxyEnable    REG_DWORD    0x1", "ProxyEnable    REG_DWORD    0x0")
    assert [s.kind for s in parse_reg_internet_settings(disabled)] == ["pac"]
    assert parse_reg_connections(recorded("reg-connections-wpad.txt")) == [
        ProxySetting("windows_registry", "pac", "wpad=auto-detect")]
    no_wpad = recorded("reg-connections-wpad.txt").replace("030000000B", "0300000003")
    assert parse_reg_connections(no_wpad) == []


def test_scutil():
    assert parse_scutil(recorded("scutil-manual-wpad.txt")) == [
        ProxySetting("scutil", "manual", "http=proxy.school.lan:3128"),
        ProxySetting("scutil", "manual", "https=proxy.school.lan:3129"),
        ProxySetting("scutil", "pac", "wpad=auto-detect"),
    ]
    assert parse_scutil(recorded("scutil-pac.txt")) == [
        ProxySetting("scutil", "pac", "pac=https://pac.filter.example/school.pac")]
    assert parse_scutil(recorded("scutil-none.txt")) == []


def fake_runner(outputs: dict[str, str]):
    calls: list[list[str]] = []

    def run(argv: list[str]) -> str:
        calls.append(argv)
        if argv[0] not in outputs:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        return outputs[argv[0]]

    return run, calls


@pytest.mark.parametrize(("platform", "outputs", "kinds", "sources"), [
    ("linux", {"gsettings": recorded("gsettings-auto.txt")}, "env+pac", ["env", "gsettings"]),
    ("darwin", {"scutil": recorded("scutil-manual-wpad.txt")}, "env+manual+pac",
     ["env", "scutil"]),
    ("win32", {"reg": recorded("reg-internet-settings.txt")}, "env+manual+pac",
     ["env", "windows_registry"]),
    ("linux", {}, "env", ["env"]),
])
def test_detect_reads_only_this_os(platform: str, outputs: dict[str, str], kinds: str,
                                   sources: list[str]):
    run, calls = fake_runner(outputs)
    found = detect({"https_proxy": "http://p:3128"}, platform, run)
    assert (found.kinds, found.sources) == (kinds, sources)
    assert {argv[0] for argv in calls} <= {"gsettings", "reg", "scutil"}
    expected_tool = {"linux": "gsettings", "darwin": "scutil", "win32": "reg"}[platform]
    assert {argv[0] for argv in calls} == {expected_tool}


def test_check_proxy_none_and_unreadable_source_is_said():
    run, _calls = fake_runner({})
    result = check_proxy({}, "linux", run)
    assert result.status == "ok"
    [m] = result.measurements
    assert (m.metric, m.text, m.method) == ("proxy", "none", "proxy_config:env")
    assert result.reason == "not read: gsettings (gsettings: not found)"


def test_check_proxy_never_records_credentials():
    def run(argv: list[str]) -> str:
        if argv[0] == "reg" and "/v" in argv:
            raise subprocess.CalledProcessError(1, argv)
        return recorded("reg-internet-settings.txt")

    env = {"HTTP_PROXY": "http://bob:s3cret@proxy.school.lan:3128"}
    result = check_proxy(env, "win32", run)
    [m] = result.measurements
    assert (m.text, m.method) == ("env+manual+pac", "proxy_config:env,windows_registry")
    dumped = str(to_jsonable(result))
    for secret in SECRETS:
        assert secret not in dumped
    assert "proxy.school.lan:3128" in dumped
    assert semantic_errors(new_report("a", "0", [result])) == []


def test_other_platforms_read_the_environment_only():
    run, calls = fake_runner({})
    found = detect({}, "freebsd13", run)
    assert (found.kinds, found.sources, calls) == ("none", ["env"], [])
