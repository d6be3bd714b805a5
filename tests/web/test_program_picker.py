"""The console's program picker: with several programs, the top bar chooses which one the
program pages show; with one, there is no picker."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from setia.core.db import Database
from setia.programs import service as programs
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture


def _rule(client: TestClient, tenant: TenantFixture, name: str, program_id: str | None) -> None:
    body = {
        "name": name,
        "triggers": ["purchase"],
        "effect": {"type": "fixed", "points": 10},
    }
    params = {"program_id": program_id} if program_id else {}
    r = client.post("/v1/rules", json=body, params=params, headers=tenant.headers)
    assert r.status_code == 201, r.text


def _second_program(db: Database, tenant: TenantFixture) -> str:
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        assert t is not None
        p = programs.create_program(
            s, t, actor="test", name="Mitra Kopi Coalition", currency="IDR", is_default=False
        )
        s.commit()
        return str(p.id)


def test_with_one_program_there_is_no_picker(console_as: Any) -> None:
    page = console_as("owner").get("/console/rules")
    assert page.status_code == 200
    assert 'data-testid="program-picker"' not in page.text


def test_choosing_a_program_switches_every_program_page(
    db: Database, client: TestClient, tenant: TenantFixture, console_as: Any
) -> None:
    second = _second_program(db, tenant)
    _rule(client, tenant, "Default-program double points", None)
    _rule(client, tenant, "Coalition partner bonus", second)
    c = console_as("marketer")

    page = c.get("/console/rules")
    assert 'data-testid="program-picker"' in page.text
    assert "Mitra Kopi Coalition" in page.text
    assert "Default-program double points" in page.text
    assert "Coalition partner bonus" not in page.text

    # A garbage id or another tenant's program is refused and changes nothing.
    for bad in ("not-a-uuid", str(uuid.uuid4())):
        r = c.post("/console/program", {"program": bad, "next": "/console/rules"})
        assert r.status_code == 422
    assert "Coalition partner bonus" not in c.get("/console/rules").text
    # Without the form's token nothing changes either.
    refused = c.post("/console/program", {"program": second}, csrf=False)
    assert refused.status_code == 403

    chosen = c.post("/console/program", {"program": second, "next": "/console/rules"})
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/console/rules"
    page = c.get("/console/rules")
    assert "Coalition partner bonus" in page.text
    assert "Default-program double points" not in page.text
    assert "Showing Mitra Kopi Coalition." in page.text  # the flash after the switch
    assert f'<option value="{second}" selected>' in page.text

    # The other program pages follow (here: the tiers page answers for the coalition).
    assert c.get("/console/tiers").status_code == 200
    assert c.get("/console").status_code == 200

    # A stale choice (a program id that no longer fits) falls back to the default program.
    c.client.cookies.delete("setia_program")
    c.client.cookies.set("setia_program", str(uuid.uuid4()))
    assert "Default-program double points" in c.get("/console/rules").text


def test_a_badge_code_used_in_two_programs_is_each_programs_own(
    console_as: Any, client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """Codes are unique per program: the console shows the chosen program's, and the API
    finds it with ``program_id`` (without it, the default program's)."""
    second = _second_program(db, tenant)
    # the second program's first: ids are time-ordered, so the default program's must win
    # by being the default, not by being older
    for program_id, name in ((second, "Kopi Lima (mitra)"), (None, "Kopi Lima (utama)")):
        body = {
            "code": "kopi5",
            "names": {"id": name},
            "criteria": {"event_type": "purchase", "measure": "count", "target": 5},
        }
        params = {"program_id": program_id} if program_id else {}
        r = client.post("/v1/badges", json=body, params=params, headers=tenant.headers)
        assert r.status_code == 201, r.text
    h = tenant.headers
    assert client.get("/v1/badges/kopi5", headers=h).json()["name"] == "Kopi Lima (utama)"
    mine = client.get("/v1/badges/kopi5", params={"program_id": second}, headers=h)
    assert mine.json()["name"] == "Kopi Lima (mitra)"
    r = client.patch(
        "/v1/badges/kopi5",
        params={"program_id": second},
        json={"rewards": {"points": 40}},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert client.get("/v1/badges/kopi5", headers=h).json()["rewards"]["points"] == 0
    board = client.get("/v1/badges/kopi5/leaderboard", params={"program_id": second}, headers=h)
    assert board.status_code == 200, board.text
    unknown = client.get("/v1/badges/kopi5", params={"program_id": str(uuid.uuid4())}, headers=h)
    assert unknown.status_code == 404

    c = console_as("owner")
    assert "Kopi Lima (utama)" in c.get("/console/badges/kopi5").text
    assert c.post("/console/program", {"program": second}).status_code == 303
    page = c.get("/console/badges/kopi5")
    assert page.status_code == 200
    assert "Kopi Lima (mitra)" in page.text
