"""Administrator keys: made by the CLI, shown once, stored hashed, revocable at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from collector.cli import main
from collector.db import init_db, make_engine
from collector.deps import AdminDep
from collector.models import AdminKey
from collector.security import secret_hash


def _app_with_admin_route(db_url: str) -> FastAPI:
    from collector.app import create_app
    from collector.settings import Settings

    app = create_app(Settings(database_url=db_url))

    @app.get("/admin-only")
    def admin_only(admin: AdminDep) -> dict[str, str]:
        return {"admin": admin.name}

    return app


def test_admin_key_create_use_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["collector", "admin-key", "create", "ops desk", "--json", "--db", db]) == 0
    key = json.loads(capsys.readouterr().out)["key"]
    engine = make_engine(db)
    init_db(engine)
    with Session(engine) as session:
        stored = session.exec(select(AdminKey)).one()
    assert stored.key_hash == secret_hash(key) and key not in stored.key_hash

    with TestClient(_app_with_admin_route(db)) as client:
        ok = client.get("/admin-only", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and ok.json() == {"admin": "ops desk"}
        missing = client.get("/admin-only")
        assert missing.status_code == 401
        assert "Bearer <admin key>" in missing.json()["detail"]
        wrong = client.get("/admin-only", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "not recognised" in wrong.json()["detail"]

        assert main(["collector", "admin-key", "revoke", "ops desk", "--db", db]) == 0
        revoked = client.get("/admin-only", headers={"Authorization": f"Bearer {key}"})
        assert revoked.status_code == 401
        assert "'ops desk' has been revoked" in revoked.json()["detail"]
    capsys.readouterr()
    assert main(["collector", "admin-key", "revoke", "ops desk", "--db", db]) == 1
    assert "no active admin key called 'ops desk'" in capsys.readouterr().err
