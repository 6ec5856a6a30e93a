"""After a realistic run, no text in the database carries a raw MAC address, an SSID,
this machine's host name, the user's name, a password, or a token in clear.

The run: two agents enrol; one uploads this machine's real device inventory (the device
probe, run here) and Wi-Fi results built by the agent's own wifi probe from a link with
a real-looking SSID and BSSID; a teacher's flag with a note; an admin logs in (password),
makes a share link, and reads the API with an admin key.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from agent.probes import device
from agent.probes.wifi import link_result
from agent.probes.wifi_model import WifiLink
from agent.wire import ReportBatch, new_report, to_jsonable
from collector.web_auth import COOKIE, read_cookie
from tests.collector.conftest import ADMIN_PASSWORD, csrf_token
from tests.security.world import PROFILE, SITE_A, T0, World, bearer, close_world, make_world

SSID = "Oakfield-Staff-5G"
BSSID = "a4:2b:b0:c1:d2:e3"
MAC = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])")
FLAG_NOTE = "projector freezes again, ask Mrs Smith"


def _wifi_results(salt: str) -> list[object]:
    link = WifiLink(interface="wlan0", connected=True, source="iw link", ssid=SSID,
                    bssid=BSSID, freq_mhz=5180.0, channel=36, band_ghz=5.0, width_mhz=80,
                    rssi_dbm=-58.0, noise_dbm=-92.0, tx_rate_mbps=433.3, rx_rate_mbps=390.0)
    result = link_result(link, salt)
    assert [m.metric for m in result.measurements][:2] == ["ssid_hash", "bssid_hash"]
    return [result]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("privacy"))
    agent = bearer(w.agent_a.credential)
    control = w.client.get("/api/v1/agent/control", headers=agent)
    assert control.status_code == 200, control.text
    salt = control.json()["site_salt"]
    assert salt
    results = [*device.collect_all(cpu_busy_interval_s=0.05, nic_interval_s=0.05),
               *_wifi_results(salt)]
    report = new_report(w.agent_a.agent_id, "0.1.0", results)  # type: ignore[arg-type]
    body = json.dumps(to_jsonable(ReportBatch(reports=[report]))).encode()
    resp = w.client.post("/api/v1/reports", content=body, headers=agent)
    assert resp.status_code == 200, resp.text
    flag = w.client.post("/api/v1/flags", headers=agent,
                         json={"note": FLAG_NOTE, "created_at": (T0 + timedelta(hours=1))
                               .isoformat()})
    assert flag.status_code == 201, flag.text
    made = w.session_client.post(f"/sites/{quote(SITE_A)}/share",
                                 data={"profile": PROFILE, "days": "7",
                                       "csrf_token": csrf_token(w.session_client)})
    assert made.status_code == 201, made.text
    assert w.client.get("/api/v1/sites", headers=bearer(w.admin_key)).status_code == 200
    yield w
    close_world(w)


def all_text(w: World) -> list[tuple[str, str, str]]:
    """``(table, column, value)`` for every non-empty text value in every table (every
    column is read; JSON values are dumped, bytes decoded)."""
    found = []
    with Session(w.app.state.engine) as db:
        for name, table in SQLModel.metadata.tables.items():
            columns = list(table.columns)
            for row in db.execute(select(*columns)).all():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, (dict, list)):
                        value = json.dumps(value, ensure_ascii=False)
                    elif isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str) and value:
                        found.append((name, column.name, value))
    return found


def _hits(w: World, pattern: re.Pattern[str]) -> list[tuple[str, str, str]]:
    return [(t, c, v[:200]) for t, c, v in all_text(w) if pattern.search(v)]


def _word(text: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9_.-]){re.escape(text)}(?![A-Za-z0-9_-])")


def test_the_run_stored_what_it_should(world: World) -> None:
    text = all_text(world)
    assert any(c == "text" and len(v) == 16 for _t, c, v in text)  # the ssid/bssid hashes
    assert any(v == FLAG_NOTE for _t, _c, v in text)  # a note is the teacher's to write
    assert len(text) > 50


def test_no_raw_mac_address(world: World) -> None:
    assert _hits(world, MAC) == []


def test_no_ssid(world: World) -> None:
    assert _hits(world, re.compile(re.escape(SSID), re.IGNORECASE)) == []


def test_no_host_name_or_user_name(world: World) -> None:
    host = socket.gethostname()
    names = {host, host.split(".")[0], socket.getfqdn(), getpass.getuser()}
    for name in sorted(n for n in names if n and n != "localhost"):
        assert _hits(world, _word(name)) == [], name


def test_no_password_or_secret_in_clear(world: World) -> None:
    session_id = read_cookie_of(world)
    secrets = {"admin password": ADMIN_PASSWORD, "admin key": world.admin_key,
               "agent A credential": world.agent_a.credential,
               "agent B credential": world.agent_b.credential,
               "site token": world.site_token_a, "share token": world.share_token,
               "session id": session_id, "csrf token": csrf_token(world.session_client)}
    for what, secret in secrets.items():
        assert secret and len(secret) >= 16, what
        assert _hits(world, re.compile(re.escape(secret))) == [], what


def read_cookie_of(w: World) -> str:
    """The admin session id inside the signed cookie (stored only as its SHA-256)."""
    from starlette.requests import Request

    raw = w.session_client.cookies.get(COOKIE)
    scope = {"type": "http", "app": w.app, "headers": [(b"cookie", f"{COOKIE}={raw}".encode())]}
    return read_cookie(Request(scope)).get("s", "")
