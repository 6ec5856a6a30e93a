"""``classprobe collector share create|list|revoke``, ``collector signing-key`` and
``classprobe report verify FILE [--public-key PEM]`` (beside ``report --site S``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from classprobe.cli import main as classprobe_main
from collector.cli import main
from collector.db import init_db, make_engine
from collector.models import utcnow
from collector.services.share import ShareRefusal, ShareScope, resolve
from collector.services.signing import key_id, public_key_pem, sign_report, signing_key
from tests.collector.test_campaigns import PROFILE_ID, SITE, school, two_campaigns

Run = tuple[int, str, str]


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/share.db"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as session:
        site, _ = school(session, devices=2)
        two_campaigns(session, site)
    engine.dispose()
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_revoke(capsys: pytest.CaptureFixture[str], db: str,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLASSPROBE_PUBLIC_URL", raising=False)
    code, out, err = run(capsys, "collector", "share", "create", "--site", SITE, "--profile",
                         PROFILE_ID, "--campaign", "spring", "--days", "7", "--base-url",
                         "https://probe.school.example/", "--db", db)
    assert code == 0, err
    found = re.fullmatch(r"https://probe\.school\.example/share/([A-Za-z0-9_-]{43})\n", out)
    assert found, out
    assert re.fullmatch(r"share link 1 of site 'Test School' \(profile 'test-latency', "
                        r"campaign 'spring'\) valid until \S+; the address is shown only "
                        r"now\n", err), err
    engine = make_engine(db)
    with Session(engine) as session:
        scope = resolve(session, found.group(1), utcnow())
    assert isinstance(scope, ShareScope)
    assert (scope.site, scope.profile, scope.campaign) == (SITE, PROFILE_ID, "spring")

    code, out, err = run(capsys, "collector", "share", "create", "--site", SITE, "--profile",
                         PROFILE_ID, "--json", "--db", db)
    created = json.loads(out)
    assert (code, created["id"], created["campaign"], created["state"], created["created_by"]) \
        == (0, 2, None, "active", "cli")
    assert re.fullmatch(r"/share/[A-Za-z0-9_-]{43}", created["url"])  # no base URL known
    assert "no --base-url and no CLASSPROBE_PUBLIC_URL" in err

    code, out, _ = run(capsys, "collector", "share", "list", "--site", SITE, "--db", db)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["id", "profile", "campaign", "created", "(UTC)", "expires",
                                "(UTC)", "state", "by"]
    assert [line.split()[:3] + line.split()[-2:] for line in lines[1:]] == [
        ["2", PROFILE_ID, "-", "active", "cli"], ["1", PROFILE_ID, "spring", "active", "cli"]]

    code, out, _ = run(capsys, "collector", "share", "revoke", "1", "--db", db)
    assert (code, out) == (0, "share link 1 revoked: it no longer opens\n")
    with Session(engine) as session:
        assert resolve(session, found.group(1), utcnow()) == ShareRefusal("revoked")
    code, out, _ = run(capsys, "collector", "share", "list", "--site", SITE, "--json",
                       "--db", db)
    assert [(d["id"], d["state"]) for d in json.loads(out)] == [(2, "active"), (1, "revoked")]
    engine.dispose()


def test_refusals(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, _, err = run(capsys, "collector", "share", "revoke", "42", "--db", db)
    assert (code, err) == (1, "classprobe collector: no share link 42\n")
    code, _, err = run(capsys, "collector", "share", "create", "--site", "Nowhere",
                       "--profile", PROFILE_ID, "--db", db)
    assert (code, err) == (1, "classprobe collector: unknown site 'Nowhere'\n")
    code, _, err = run(capsys, "collector", "share", "create", "--site", SITE, "--profile",
                       PROFILE_ID, "--campaign", "summer", "--db", db)
    assert code == 1 and err.startswith("classprobe collector: site 'Test School' has no "
                                        "campaign 'summer'")
    with pytest.raises(SystemExit) as exited:
        main(["collector", "share", "create", "--site", SITE, "--profile", PROFILE_ID,
              "--days", "91", "--db", db])
    assert exited.value.code == 2
    assert "argument --days: 91 is out of range (1 to 90)" in capsys.readouterr().err
    code, out, _ = run(capsys, "collector", "share", "list", "--site", SITE, "--db", db)
    assert out == "site 'Test School' has no share links\n"


def test_signing_key_command(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, pem, _ = run(capsys, "collector", "signing-key", "--db", db)
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    engine = make_engine(db)
    assert pem == public_key_pem(signing_key(engine))
    code, out, _ = run(capsys, "collector", "signing-key", "--json", "--db", db)
    assert json.loads(out) == {"alg": "Ed25519", "key_id": key_id(signing_key(engine)),
                               "public_key_pem": pem}
    engine.dispose()


# --- report verify ----------------------------------------------------------------------

@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, str]:
    """A signed report file, the signer's public key file and its key id."""
    key = Ed25519PrivateKey.generate()
    doc = sign_report({"site": SITE, "profile": {"status": "pass"}}, key, utcnow())
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    pem = tmp_path / "collector.pem"
    pem.write_text(public_key_pem(key), encoding="ascii")
    return report, pem, key_id(key)


def verify(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = classprobe_main(["report", "verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_valid(capsys: pytest.CaptureFixture[str],
                      signed: tuple[Path, Path, str]) -> None:
    report, pem, kid = signed
    signed_at = json.loads(report.read_text())["signed"]["signed_at"]
    code, out, err = verify(capsys, str(report), "--public-key", str(pem))
    assert (code, out, err) == (0, f"valid, signed by key {kid} at {signed_at}\n", "")
    code, out, err = verify(capsys, str(report))
    assert (code, out) == (0, f"valid, signed by key {kid} at {signed_at}\n")
    assert err == ("note: the key was not checked against the collector's; give "
                   "--public-key to prove who signed it\n")


def test_verify_failures_name_the_reason(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         signed: tuple[Path, Path, str]) -> None:
    report, pem, kid = signed
    tampered = tmp_path / "tampered.json"
    tampered.write_text(report.read_text().replace('"pass"', '"fail"'), encoding="utf-8")
    code, out, err = verify(capsys, str(tampered), "--public-key", str(pem))
    assert (code, out) == (1, "")
    assert err == (f"classprobe report verify: {tampered}: not valid: bad signature: the "
                   f"report or the 'signed' block was changed after key {kid} signed it (or "
                   "the signature was)\n")

    other = tmp_path / "other.pem"
    other_key = Ed25519PrivateKey.generate()
    other.write_text(public_key_pem(other_key), encoding="ascii")
    code, _, err = verify(capsys, str(report), "--public-key", str(other))
    assert (code, err) == (1, f"classprobe report verify: {report}: not valid: unknown key: "
                              f"signed by key {kid}, not by the expected key "
                              f"{key_id(other_key)}\n")

    broken = tmp_path / "broken.json"
    broken.write_text('{"report": ', encoding="utf-8")
    code, _, err = verify(capsys, str(broken))
    assert (code, err) == (1, f"classprobe report verify: {broken}: not valid: malformed: "
                              "not JSON (Expecting value at line 1 column 12)\n")

    code, _, err = verify(capsys, str(tmp_path / "missing.json"))
    assert (code, err) == (1, f"classprobe report verify: cannot read "
                              f"'{tmp_path / 'missing.json'}': No such file or directory\n")
    code, _, err = verify(capsys, str(report), "--public-key", str(report))
    assert code == 1 and err.startswith(f"classprobe report verify: public key file "
                                        f"'{report}': not a PEM public key")


def test_report_site_still_works(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code = classprobe_main(["report", "--site", SITE, "--profile", PROFILE_ID,
                            "--format", "json", "--db", db])
    out, _ = capsys.readouterr()
    assert code == 0
    assert [p["profile"] for p in json.loads(out)["profiles"]] == [PROFILE_ID]
    with pytest.raises(SystemExit) as exited:
        classprobe_main(["report", "verify"])
    assert exited.value.code == 2
    assert "the following arguments are required: FILE" in capsys.readouterr().err
