"""``classprobe collector notify add|list|test|disable`` against a SQLite file and local
receivers."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from collector.cli import main
from collector.db import init_db, make_engine
from collector.models import utcnow
from collector.services.delivery import SMTP_NOT_CONFIGURED, deliver_due
from collector.services.notify import Event, enqueue
from collector.services.sites import get_site
from collector.settings import Settings
from tests.collector.notify_receivers import http_receiver, smtp_receiver

SITE = "Hill School"


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    assert main(["collector", "create-site", SITE, "--db", url]) == 0
    capsys.readouterr()
    return url


def run(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> tuple[int, str, str]:
    code = main(["collector", "notify", *argv, "--db", db])
    out, err = capsys.readouterr()
    return code, out, err


def add_hook(capsys: pytest.CaptureFixture[str], db: str, url: str,
             *more: str) -> dict[str, object]:
    code, out, err = run(capsys, db, "add", "--site", SITE, "--webhook", url, "--json", *more)
    assert (code, err) == (0, "")
    added: dict[str, object] = json.loads(out)
    return added


def test_add_prints_a_made_secret_once_and_list_never_shows_it(
        capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, db, "add", "--site", SITE, "--webhook",
                       "https://hooks.example/classprobe", "--events",
                       "flag_raised,verdict_changed")
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == [
        "notification target 1 added to site 'Hill School': webhook "
        "https://hooks.example/classprobe for verdict_changed, flag_raised",
        "webhook secret (shown once; the receiver checks X-Classprobe-Signature with it):"]
    secret = lines[2]
    assert len(lines) == 3 and len(secret) >= 40

    code, out, _ = run(capsys, db, "add", "--site", SITE, "--email", "it@hill.example")
    assert (code, out) == (0, "notification target 2 added to site 'Hill School': email "
                              "it@hill.example for verdict_changed, agent_silent, "
                              "flag_raised\n")

    code, out, _ = run(capsys, db, "list", "--site", SITE, "--json")
    assert code == 0 and secret not in out
    rows = json.loads(out)
    for row in rows:
        del row["created_at"]
    assert rows == [
        {"id": 1, "kind": "webhook", "address": "https://hooks.example/classprobe",
         "events": ["verdict_changed", "flag_raised"], "disabled": False, "pending": 0,
         "delivered": 0, "failed": 0, "last_error": None},
        {"id": 2, "kind": "email", "address": "it@hill.example",
         "events": ["verdict_changed", "agent_silent", "flag_raised"], "disabled": False,
         "pending": 0, "delivered": 0, "failed": 0, "last_error": None}]


def test_a_given_secret_is_not_printed(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, db, "add", "--site", SITE, "--webhook", "http://127.0.0.1:1/h",
                       "--secret", "0123456789abcdef")
    assert code == 0 and "0123456789abcdef" not in out and "secret" not in out


@pytest.mark.parametrize(("argv", "message"), [
    (("--webhook", "ftp://127.0.0.1/x"),
     "webhook URL 'ftp://127.0.0.1/x' is not an http:// or https:// URL with a host"),
    (("--email", "nobody"), "e-mail address 'nobody' is not of the form name@domain"),
    (("--email", "it@hill.example", "--events", "flag_raised,coffee"),
     "unknown event 'coffee'; events: verdict_changed, agent_silent, flag_raised"),
])
def test_bad_targets_are_refused_naming_the_value(capsys: pytest.CaptureFixture[str], db: str,
                                                 argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, db, "add", "--site", SITE, *argv)
    assert (code, out, err) == (1, "", f"classprobe collector: {message}\n")


def test_unknown_site_and_target(capsys: pytest.CaptureFixture[str], db: str) -> None:
    assert run(capsys, db, "list", "--site", "Nowhere") == (
        1, "", "classprobe collector: unknown site 'Nowhere'\n")
    assert run(capsys, db, "test", "7") == (
        1, "", "classprobe collector: no notification target with id 7\n")
    assert run(capsys, db, "list", "--site", SITE) == (
        0, "site 'Hill School' has no notification targets (add one with 'classprobe "
           "collector notify add')\n", "")


def test_test_sends_a_signed_test_event_now(capsys: pytest.CaptureFixture[str],
                                            db: str) -> None:
    with http_receiver() as hook:
        added = add_hook(capsys, db, hook.url)
        code, out, _ = run(capsys, db, "test", str(added["id"]))
    assert (code, out) == (0, f"test notification delivered to webhook {hook.url}: "
                              "HTTP 204\n")
    [got] = hook.received
    body = json.loads(got.body)
    assert (got.headers["x-classprobe-event"], body["event"], body["site"],
            body["target_id"], body["link"]) == ("test", "test", SITE, 1,
                                                 "/sites/Hill%20School")
    assert got.signed_by(str(added["secret"]))


def test_test_reports_a_failure(capsys: pytest.CaptureFixture[str], db: str) -> None:
    with http_receiver(fail_first=1, fail_status=404) as hook:
        add_hook(capsys, db, hook.url)
        code, out, _ = run(capsys, db, "test", "1")
    assert (code, out) == (1, f"test notification NOT delivered to webhook {hook.url}: "
                              f"HTTP 404 from {hook.url}: receiver is failing on purpose\n")


def test_test_email_needs_smtp_and_then_arrives(capsys: pytest.CaptureFixture[str], db: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "FROM", "PORT", "STARTTLS"):
        monkeypatch.delenv(f"CLASSPROBE_SMTP_{name}", raising=False)
    run(capsys, db, "add", "--site", SITE, "--email", "it@hill.example")
    assert run(capsys, db, "test", "1") == (
        1, f"test notification NOT delivered to email it@hill.example: "
           f"{SMTP_NOT_CONFIGURED}\n", "")
    with smtp_receiver() as smtp:
        monkeypatch.setenv("CLASSPROBE_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CLASSPROBE_SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("CLASSPROBE_SMTP_FROM", "probe@hill.example")
        monkeypatch.setenv("CLASSPROBE_SMTP_STARTTLS", "false")
        code, out, _ = run(capsys, db, "test", "1")
    assert (code, out) == (0, "test notification delivered to email it@hill.example: "
                              f"accepted by 127.0.0.1:{smtp.port}\n")
    [mail] = smtp.mails
    assert mail.message["Subject"] == ("[classprobe] Hill School: test notification "
                                       "(no action needed)")


def test_list_shows_pending_failed_and_the_last_error(capsys: pytest.CaptureFixture[str],
                                                      db: str) -> None:
    with http_receiver(fail_first=100) as hook:
        add_hook(capsys, db, hook.url)
        engine = make_engine(db)
        init_db(engine)
        now = utcnow()
        with Session(engine) as session:
            site = get_site(session, SITE)
            assert site.id is not None

            def flag(note: str) -> None:
                assert site.id is not None
                enqueue(session, Event("flag_raised", site.id, now, now,
                                       {"event": "flag_raised", "note": note}))
                session.commit()

            flag("given up")
            when = now
            for step in (1, 5, 30, 120, 720, 0):  # six failed attempts: given up
                assert [o.delivered for _, o in deliver_due(session, when, Settings())] \
                    == [False]
                when += timedelta(minutes=step)
            flag("pending 1")
            flag("pending 2")
        engine.dispose()
    code, out, _ = run(capsys, db, "list", "--site", SITE)
    assert code == 0
    assert out.splitlines() == [
        f"1  webhook  {hook.url}",
        "    events: verdict_changed, agent_silent, flag_raised; pending 2, delivered 0, "
        "failed 1",
        f"    last error: HTTP 503 from {hook.url}: receiver is failing on purpose"]

    assert run(capsys, db, "disable", "1")[:2] == (
        0, "notification target 1 disabled: it gets no new notifications and its pending "
           "ones are given up\n")
    code, out, _ = run(capsys, db, "list", "--site", SITE, "--json")
    assert json.loads(out)[0]["disabled"] is True
