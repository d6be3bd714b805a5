"""Settings: business, programs, API keys, staff users; and the `setia staff` commands."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from setia.audit.models import AuditRecord
from setia.core import db as core_db
from setia.core.config import get_settings
from setia.core.db import Database
from setia.core.errors import Conflict
from setia.programs.models import Program
from setia.tenants.models import ApiKey, Tenant
from setia.web import staff
from setia.web.models import StaffUser, WebSession
from tests.conftest import TenantFixture
from tests.web.conftest import StaffLogin


def _error(html: str, field: str = "__all__") -> str:
    m = re.search(rf'id="err-{re.escape(field)}">([^<]*)<', html)
    return m.group(1) if m else ""


def _actions(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditRecord.action).order_by(AuditRecord.created_at)))


# --- business ---------------------------------------------------------------------------


def test_the_owner_changes_the_business(
    console_as: Any, db: Database, tenant: TenantFixture
) -> None:
    c = console_as("owner")
    page = c.get("/console/settings")
    assert page.status_code == 200
    assert 'value="Kopi Test"' in page.text
    assert "IDR" in page.text  # currency shown, not editable
    assert 'name="currency"' not in page.text
    r = c.post(
        "/console/settings/tenant",
        {
            "name": "Kopi Baru",
            "timezone": "Asia/Makassar",
            "locale": "ms",
            "auto_create_members": "1",
        },
    )
    assert r.status_code == 303
    assert "The business settings were saved." in c.get(r.headers["location"]).text
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        assert t is not None
        assert (t.name, t.timezone, t.locale) == ("Kopi Baru", "Asia/Makassar", "ms")
    assert "tenant.updated" in _actions(db)


def test_a_bad_time_zone_is_shown_next_to_the_field_and_nothing_is_saved(
    console_as: Any, db: Database, tenant: TenantFixture
) -> None:
    c = console_as("owner", lang="ms")
    r = c.post("/console/settings/tenant", {"name": "", "timezone": "Mars/Base", "locale": "id"})
    assert r.status_code == 422
    assert _error(r.text, "name") == "Medan ini wajib diisi."
    assert _error(r.text, "timezone").startswith("Zon waktu tidak dikenali")
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        assert t is not None
        assert (t.name, t.timezone) == ("Kopi Test", "Asia/Jakarta")


def test_an_admin_reads_the_business_but_cannot_change_it(console_as: Any) -> None:
    c = console_as("admin")
    page = c.get("/console/settings/tenant")
    assert page.status_code == 200
    assert "Only an owner can change the business settings." in page.text
    assert 'action="/console/settings/tenant"' not in page.text
    r = c.post("/console/settings/tenant", {"name": "Hijacked", "timezone": "UTC", "locale": "en"})
    assert r.status_code == 403


# --- programs ---------------------------------------------------------------------------


def _program_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "Kopi Rewards",
        "points_name": "Poin",
        "earn_points": "2",
        "earn_per_amount": "10.000",
        "rounding": "floor",
        "pending_days": "3",
        "expiry_policy": "after_duration",
        "expiry_months": "12",
        "expiry_period": "",
        "min_redeem_points": "50",
        "cost_per_point": "10",
        "points_payment_rate": "",
        "points_payment_max_percent": "50",
        "hold_timeout_minutes": "30",
        "refund_shortfall": "debt",
        "coupon_cancel_returns_points": "1",
    }
    form.update(changes)
    return form


def test_program_settings_are_saved_as_a_new_revision(
    console_as: Any, db: Database, tenant: TenantFixture
) -> None:
    c = console_as("admin")
    listing = c.get("/console/settings/programs")
    assert "Kopi Test Rewards" in listing.text
    url = f"/console/settings/programs/{tenant.program_id}"
    assert 'value="Kopi Test Rewards"' in c.get(url).text
    r = c.post(url, _program_form())
    assert r.status_code == 303, _error(r.text)
    with db.session() as s:
        p = s.get(Program, tenant.program_id)
        assert p is not None
        assert p.earn_points == 2
        assert p.earn_per_amount == 10000  # "10.000" typed the Indonesian way
        assert (p.pending_days, p.expiry_policy, p.min_redeem_points) == (3, "after_duration", 50)
        assert p.points_payment_rate is None
        assert p.revision == 2
    assert "program.updated" in _actions(db)
    assert "2 Poin per Rp\xa010,000" in c.get("/console/settings/programs").text


def test_wrong_program_input_points_at_the_field(
    console_as: Any, db: Database, tenant: TenantFixture
) -> None:
    c = console_as("owner", lang="id")
    url = f"/console/settings/programs/{tenant.program_id}"
    r = c.post(url, _program_form(earn_points="dua", pending_days="400", name=""))
    assert r.status_code == 422
    assert _error(r.text, "earn_points") == "Masukkan bilangan bulat."
    assert _error(r.text, "name") == "Kolom ini wajib diisi."
    r = c.post(url, _program_form(pending_days="400"))
    assert r.status_code == 422
    assert _error(r.text, "pending_days") == "Masukkan 365 atau kurang."
    r = c.post(url, _program_form(expiry_policy="end_of_period", expiry_period=""))
    assert r.status_code == 422
    assert _error(r.text, "expiry_period") == "Pilih periode untuk aturan kedaluwarsa ini."
    with db.session() as s:
        p = s.get(Program, tenant.program_id)
        assert p is not None
        assert (p.revision, p.pending_days, p.earn_points) == (1, 0, 1)


def test_an_unknown_program_is_a_404(console_as: Any) -> None:
    c = console_as("owner")
    assert c.get(f"/console/settings/programs/{uuid.uuid4()}").status_code == 404
    assert c.get("/console/settings/programs/not-an-id").status_code == 404


# --- API keys ---------------------------------------------------------------------------


def test_an_api_key_is_shown_once_works_and_can_be_revoked(
    console_as: Any, client: TestClient, db: Database
) -> None:
    c = console_as("admin")
    r = c.post("/console/settings/keys", {"name": "Till <3>", "scope": "read"})
    assert r.status_code == 201
    secret = re.search(r'id="secret">(sk_read_[^<]+)<', r.text)
    assert secret
    assert "It is shown only once" in r.text
    headers = {"Authorization": f"Bearer {secret[1]}"}
    assert client.get("/v1/tenant", headers=headers).status_code == 200
    listing = c.get("/console/settings/keys")
    assert secret[1][:12] in listing.text
    assert secret[1] not in listing.text  # never again
    assert "Till &lt;3&gt;" in listing.text
    with db.session() as s:
        key = s.scalars(select(ApiKey).where(ApiKey.name == "Till <3>")).one()
    confirm = c.get(f"/console/settings/keys/{key.id}/revoke")
    assert "stops working at once" in confirm.text
    r = c.post(f"/console/settings/keys/{key.id}/revoke", csrf=False)
    assert r.status_code == 403
    assert client.get("/v1/tenant", headers=headers).status_code == 200
    r = c.post(f"/console/settings/keys/{key.id}/revoke")
    assert r.status_code == 303
    assert client.get("/v1/tenant", headers=headers).status_code == 401
    assert "Revoked" in c.get("/console/settings/keys").text
    assert _actions(db)[-2:] == ["api_key.created", "api_key.revoked"]


def test_a_key_needs_a_name_and_a_known_scope(console_as: Any, db: Database) -> None:
    c = console_as("owner", lang="ms")
    r = c.post("/console/settings/keys", {"name": "", "scope": "root"})
    assert r.status_code == 422
    assert _error(r.text, "name") == "Medan ini wajib diisi."
    assert _error(r.text, "scope")
    with db.session() as s:
        assert len(s.scalars(select(ApiKey)).all()) == 1  # the tenant's first key only


def test_another_tenants_key_cannot_be_revoked(
    console_as: Any, db: Database, make_other_tenant: TenantFixture
) -> None:
    c = console_as("owner")
    with db.session() as s:
        other = s.scalars(
            select(ApiKey).where(ApiKey.tenant_id == make_other_tenant.tenant_id)
        ).one()
    assert c.post(f"/console/settings/keys/{other.id}/revoke").status_code == 404
    with db.session() as s:
        assert s.get(ApiKey, other.id).revoked_at is None  # type: ignore[union-attr]


@pytest.fixture
def make_other_tenant(db: Database) -> TenantFixture:
    from tests.conftest import make_tenant

    return make_tenant(
        db, name="Other Shop", country="MY", currency="MYR", timezone="Asia/Kuala_Lumpur"
    )


# --- staff users ------------------------------------------------------------------------


def _user(db: Database, email: str) -> StaffUser:
    with db.session() as s:
        user = s.scalars(select(StaffUser).where(StaffUser.email == email)).one()
        s.expunge(user)
        return user


def test_staff_list_escapes_names_and_invites_show_the_link_once(
    console_as: Any, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    c = console_as("owner")
    other = staff_user("cashier")
    with db.session() as s:
        u = s.get(StaffUser, other.id)
        assert u is not None
        u.name = "<script>alert(1)</script>"
    page = c.get("/console/settings/staff")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text
    r = c.post("/console/settings/staff/invite", {"email": "budi@example.com", "role": "cashier"})
    assert r.status_code == 201
    assert "/console/invite/" in r.text
    invited = _user(db, "budi@example.com")
    assert (invited.status, invited.role) == ("invited", "cashier")
    listing = c.get("/console/settings/staff")
    assert "/console/invite/" not in listing.text
    assert "budi@example.com" in listing.text
    # the same address again: next to the field, 409
    r = c.post("/console/settings/staff/invite", {"email": "BUDI@example.com", "role": "analyst"})
    assert r.status_code == 409
    assert _error(r.text, "email") == "Someone already signs in with this email address."
    r = c.post("/console/settings/staff/invite", {"email": "not-an-email", "role": "analyst"})
    assert r.status_code == 422
    assert _error(r.text, "email").startswith("Enter an email address")
    # a new link for someone who has not accepted yet
    r = c.post(f"/console/settings/staff/{invited.id}/reinvite")
    assert r.status_code == 201
    assert "/console/invite/" in r.text
    assert {"staff.invited", "staff.reinvited"} <= set(_actions(db))


def test_an_admin_cannot_invite_demote_or_disable_an_owner(
    console_as: Any, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    owner = staff_user("owner")
    c = console_as("admin")
    page = c.get("/console/settings/staff")
    assert '<option value="owner"' not in page.text  # an admin cannot make owners
    r = c.post("/console/settings/staff/invite", {"email": "boss@example.com", "role": "owner"})
    assert r.status_code == 403
    assert _error(r.text, "role") == "Only an owner may invite, change or disable an owner."
    r = c.post(f"/console/settings/staff/{owner.id}/role", {"role": "cashier"})
    assert r.status_code == 403
    assert (
        _error(r.text, f"user-{owner.id}")
        == "Only an owner may invite, change or disable an owner."
    )
    r = c.post(f"/console/settings/staff/{owner.id}/disable")
    assert r.status_code == 403
    u = _user(db, owner.email)
    assert (u.role, u.status) == ("owner", "active")
    # but an admin manages the other roles
    cashier = staff_user("cashier")
    r = c.post(f"/console/settings/staff/{cashier.id}/role", {"role": "analyst"})
    assert r.status_code == 303
    assert _user(db, cashier.email).role == "analyst"
    r = c.post(f"/console/settings/staff/{cashier.id}/role", {"role": "owner"})
    assert r.status_code == 403
    assert _user(db, cashier.email).role == "analyst"


def test_nobody_disables_themself_or_the_last_owner(
    console_as: Any, staff_user: Callable[..., StaffLogin], db: Database, tenant: TenantFixture
) -> None:
    c = console_as("owner")
    assert c.login is not None
    r = c.post(f"/console/settings/staff/{c.login.id}/disable")
    assert r.status_code == 409
    assert "You cannot change your own role or disable yourself." in r.text
    r = c.post(f"/console/settings/staff/{c.login.id}/role", {"role": "admin"})
    assert r.status_code == 409
    assert _user(db, c.login.email).status == "active"
    # the last active owner (the operator's CLI is not bound by the self rule)
    with db.session() as s:
        me = s.get(StaffUser, c.login.id)
        assert me is not None
        with pytest.raises(Conflict) as exc:
            staff.set_enabled(s, None, me, False)
        assert exc.value.code == "last_owner"
        with pytest.raises(Conflict):
            staff.change_role(s, None, me, "admin")
    # with a second owner, one owner may disable the other
    second = staff_user("owner")
    r = c.post(f"/console/settings/staff/{second.id}/disable")
    assert r.status_code == 303
    assert _user(db, second.email).status == "disabled"
    r = c.post(f"/console/settings/staff/{second.id}/enable")
    assert r.status_code == 303
    assert _user(db, second.email).status == "active"


def test_disabling_someone_signs_them_out(console_as: Any, db: Database) -> None:
    owner = console_as("owner")
    marketer = console_as("marketer")
    assert marketer.login is not None
    confirm = owner.get(f"/console/settings/staff/{marketer.login.id}/disable")
    assert "They are signed out at once" in confirm.text
    r = owner.post(f"/console/settings/staff/{marketer.login.id}/disable", csrf=False)
    assert r.status_code == 403
    assert _user(db, marketer.login.email).status == "active"
    r = owner.post(f"/console/settings/staff/{marketer.login.id}/disable")
    assert r.status_code == 303
    with db.session() as s:
        rows = s.scalars(
            select(WebSession).where(WebSession.staff_user_id == marketer.login.id)
        ).all()
        assert all(r.revoked_at is not None for r in rows)
    assert marketer.get("/console/settings", follow_redirects=False).status_code == 303
    assert "staff.disabled" in _actions(db)


# --- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[Callable[..., Any]]:
    from setia.cli import app

    monkeypatch.setenv("SETIA_DATABASE_URL", db_url)
    get_settings.cache_clear()
    core_db.set_database(None)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=input)

    yield invoke
    core_db.get_database().dispose()
    core_db.set_database(None)
    get_settings.cache_clear()


def test_the_staff_commands(cli: Callable[..., Any], tenant: TenantFixture, db: Database) -> None:
    tid = str(tenant.tenant_id)
    r = cli(
        "staff",
        "create",
        "--tenant",
        tid,
        "--email",
        "Sari@Example.com",
        "--password-stdin",
        input="a-long-password\n",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["email"], out["role"], out["status"]) == ("sari@example.com", "owner", "active")
    r = cli("staff", "create", "--tenant", tid, "--email", "kasir@example.com", "--role", "cashier")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["invite_path"].startswith("/console/invite/")
    r = cli(
        "staff",
        "create",
        "--tenant",
        tid,
        "--email",
        "x@example.com",
        "--password-stdin",
        input="short\n",
    )
    assert r.exit_code == 1
    assert "at least 10" in r.output
    r = cli("staff", "list", "--tenant", tid)
    assert [u["email"] for u in json.loads(r.output)] == ["sari@example.com", "kasir@example.com"]
    r = cli("staff", "reset-link", "sari@example.com")
    assert json.loads(r.output)["path"].startswith("/console/reset/")
    r = cli("staff", "reset-link", "kasir@example.com")
    assert json.loads(r.output)["path"].startswith("/console/invite/")
    r = cli("staff", "disable", "sari@example.com")  # the only active owner
    assert r.exit_code == 1
    assert "at least one active owner" in r.output
    r = cli("staff", "disable", "kasir@example.com")
    assert r.exit_code == 0
    assert json.loads(r.output)["status"] == "disabled"
    r = cli("staff", "disable", "nobody@example.com")
    assert r.exit_code == 1


def test_a_double_submitted_form_creates_one_key_and_one_invite(
    console_as: Any, db: Database
) -> None:
    c = console_as("owner")
    page = c.get("/console/settings/keys")
    idem = re.search(r'name="idem" value="([^"]+)"', page.text)
    assert idem
    first = c.post("/console/settings/keys", {"name": "Till 2", "scope": "pos", "idem": idem[1]})
    assert first.status_code == 201
    assert first.headers["cache-control"] == "no-store"
    again = c.post("/console/settings/keys", {"name": "Till 2", "scope": "pos", "idem": idem[1]})
    assert again.status_code == 303
    assert "already created" in c.get(again.headers["location"]).text
    with db.session() as s:
        assert len(s.scalars(select(ApiKey).where(ApiKey.name == "Till 2")).all()) == 1
    page = c.get("/console/settings/staff")
    idem = re.search(r'name="idem" value="([^"]+)"', page.text)
    assert idem
    form = {"email": "dewi@example.com", "role": "analyst", "idem": idem[1]}
    assert c.post("/console/settings/staff/invite", form).status_code == 201
    again = c.post("/console/settings/staff/invite", form)
    assert again.status_code == 303
    assert "already sent" in c.get(again.headers["location"]).text
