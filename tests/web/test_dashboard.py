"""The console dashboard (/console) and its chart JSON (/console/api/dashboard/...): the
figures are the services' own for a tenant built through the /v1 API, the period is parsed
with messages next to the field, roles are enforced, an empty tenant gets empty states."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.analytics import kpis
from setia.analytics.tables import MemberScore
from setia.core.db import Database
from setia.core.time import utcnow, zone
from setia.ledger import queries as ledger_queries
from setia.programs.models import Program
from setia.tenants.models import Tenant
from setia.tiers import service as tier_service
from setia.tiers import view as tier_view
from setia.web import i18n
from tests.conftest import TenantFixture, make_tenant
from tests.web.conftest import ConsoleClient

JSON_ENDPOINTS = ("points", "tiers", "labels", "loyalty-types", "cohorts", "rewards")

TIERS = {
    "name": "Kopi tiers",
    "metrics": [{"metric": "spend"}],
    "window": {"kind": "calendar_year"},
    "retention": {"kind": "end_of_next_window"},
    "downgrade": "one_level",
    "tiers": [
        {
            "code": "bronze",
            "names": {"id": "Perunggu", "ms": "Gangsa", "en": "Bronze"},
            "thresholds": ["0"],
        },
        {
            "code": "gold",
            "names": {"id": "Emas", "ms": "Emas", "en": "Gold"},
            "thresholds": ["200000"],
        },
    ],
}


def _post(client: TestClient, t: TenantFixture, path: str, body: Any) -> Any:
    r = client.post(path, json=body, headers=t.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def build(client: TestClient, t: TenantFixture) -> dict[str, Any]:
    """Six members: four bought in the last 30 days (two of them on two days), one only 60
    days ago, one never; a tier set; a reward redeemed twice; scores recomputed."""
    r = client.put(f"/v1/programs/{t.program_id}/tier-set", json=TIERS, headers=t.headers)
    assert r.status_code == 200, r.text
    now = utcnow()
    ids: dict[str, str] = {}
    n = 0

    def buy(member: str, amount: int, days_ago: float) -> None:
        nonlocal n
        n += 1
        out = _post(
            client,
            t,
            "/v1/events",
            {
                "id": f"buy-{member}-{n}",
                "type": "purchase",
                "member": {"external_id": member},
                "order_id": f"ORD-{member}-{n}",
                "amount": str(amount),
                "currency": "IDR",
                "occurred_at": (now - timedelta(days=days_ago)).isoformat(),
            },
        )
        ids[member] = str(out["member_id"])

    buy("ani", 120000, 2)
    buy("ani", 90000, 5)
    buy("budi", 250000, 3)
    buy("budi", 40000, 12)
    buy("citra", 55000, 1)
    buy("dewi", 30000, 20)
    buy("eko", 75000, 60)
    ids["fajar"] = str(
        _post(client, t, "/v1/members", {"external_id": "fajar", "name": "Fajar"})["id"]
    )
    r = client.put(
        f"/v1/programs/{t.program_id}/rewards/KOPI",
        json={
            "kind": "physical",
            "names": {"id": "Kopi gratis", "en": "Free coffee"},
            "points": 50,
        },
        headers=t.headers,
    )
    assert r.status_code == 201, r.text
    for member in ("ani", "budi"):
        _post(
            client,
            t,
            f"/v1/members/{ids[member]}/points/adjust",
            {"points": 200, "reason": "welcome"},
        )
        _post(client, t, f"/v1/members/{ids[member]}/redemptions", {"reward": "KOPI"})
    _post(client, t, "/v1/analytics/recompute", None)
    return ids


def expected(db: Database, t: TenantFixture, start: date, end: date) -> dict[str, Any]:
    with db.session() as s:
        tenant = s.get(Tenant, t.tenant_id)
        program = s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        report = kpis.kpis(s, tenant, program, start=start, end=end)
        report["liability_points"] = ledger_queries.liability(s, program.id)
        report["cost_per_point"] = program.cost_per_point
        report["scored"] = s.execute(
            select(func.count()).where(MemberScore.program_id == program.id)
        ).scalar_one()
        return report


def today(tz: str = "Asia/Jakarta") -> date:
    return utcnow().astimezone(zone(tz)).date()


def tile(html: str, name: str) -> str:
    found = re.search(rf'id="stat-{name}">.*?<div class="value">([^<]*)</div>', html, re.S)
    assert found, f"tile {name} not found"
    return found.group(1).strip()


def field_error(html: str, name: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="err-{name}">([^<]*)</p>', html)
    return html_lib.unescape(found.group(1)) if found else None


def test_the_dashboard_shows_the_services_figures(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    build(client, tenant)
    c = console_as("owner")
    r = c.get("/console")
    assert r.status_code == 200
    want = expected(db, tenant, today() - timedelta(days=29), today())
    assert want["members"]["active"] == 4  # the tenant really has what the test built
    assert want["members"]["repeat"] == 2
    assert want["points"]["issued"] > 0
    assert want["points"]["redeemed"] == 100
    num = lambda v: i18n.number(v, "en")  # noqa: E731
    assert tile(r.text, "members") == "6"
    assert tile(r.text, "active") == num(want["members"]["active"])
    assert tile(r.text, "repeat") == i18n.percent(float(want["repeat_purchase_rate"]), "en")
    assert tile(r.text, "repeat") == "50.0 %"
    assert tile(r.text, "orders") == num(want["orders"])
    assert tile(r.text, "issued") == num(want["points"]["issued"])
    assert tile(r.text, "redeemed") == num(want["points"]["redeemed"])
    assert tile(r.text, "expired") == num(want["points"]["expired"])
    liability = want["liability_points"] * want["cost_per_point"]
    assert tile(r.text, "liability") == i18n.money(liability, "IDR", "en")
    assert f"{num(want['liability_points'])} points outstanding" in r.text
    # every chart is on the page with its JSON source for the chosen period
    for name in JSON_ENDPOINTS:
        assert f'data-src="/console/api/dashboard/{name}?period=30"' in r.text
    assert "vendor/chart-4.6.1.umd.min.js" in r.text
    assert "web/charts.js" in r.text


def test_the_period_is_chosen_with_query_parameters(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    build(client, tenant)
    c = console_as("owner")
    r = c.get("/console?period=7")
    assert r.status_code == 200
    want = expected(db, tenant, today() - timedelta(days=6), today())
    assert want["members"]["active"] == 3
    assert tile(r.text, "active") == "3"
    assert '<option value="7" selected>Last 7 days</option>' in r.text
    assert "7 days" in r.text
    # 365 days: eko's purchase 60 days ago counts too
    r = c.get("/console?period=365")
    assert tile(r.text, "active") == "5"
    # custom dates are local days in the tenant's zone
    start, end = today() - timedelta(days=15), today() - timedelta(days=2)
    r = c.get(f"/console?period=custom&from={start}&to={end}")
    assert r.status_code == 200
    want = expected(db, tenant, start, end)
    assert tile(r.text, "active") == str(want["members"]["active"])
    assert tile(r.text, "issued") == i18n.number(want["points"]["issued"], "en")
    assert (
        f'data-src="/console/api/dashboard/points?period=custom&amp;from={start}&amp;to={end}"'
        in r.text
    )
    # a date without the period parameter means custom dates too
    r = c.get(f"/console?from={start}&to={end}")
    assert tile(r.text, "active") == str(want["members"]["active"])


def test_wrong_dates_get_a_message_next_to_the_field_in_the_users_language(
    client: TestClient, tenant: TenantFixture, console_as: Callable[..., ConsoleClient]
) -> None:
    build(client, tenant)
    c = console_as("owner", lang="id")
    r = c.get("/console?period=custom&from=2026-02-30&to=kemarin")
    assert r.status_code == 422
    assert field_error(r.text, "from") == "Masukkan tanggal, misalnya 2026-01-31."
    assert field_error(r.text, "to") == "Masukkan tanggal, misalnya 2026-01-31."
    assert 'aria-invalid="true"' in r.text
    # the page still shows the default period's figures
    assert tile(r.text, "active") == "4"
    r = c.get("/console?period=custom&from=2026-03-10&to=2026-03-01")
    assert r.status_code == 422
    assert (
        field_error(r.text, "from") == "Tanggal awal harus sama dengan atau sebelum tanggal akhir."
    )
    r = c.get("/console?period=custom&from=2020-01-01&to=2026-01-01")
    assert field_error(r.text, "to") == "Pilih periode paling lama 731 hari."
    r = c.get("/console?period=custom&from=2026-01-01")
    assert field_error(r.text, "to") == "Kolom ini wajib diisi."
    r = c.get("/console?period=14")
    assert r.status_code == 422
    assert field_error(r.text, "period") is not None
    cm = console_as("owner", lang="ms")
    r = cm.get("/console?period=custom&from=x&to=2026-01-01")
    assert field_error(r.text, "from") == "Masukkan tarikh, contohnya 2026-01-31."
    # the JSON endpoints answer 422 with the same messages, never 500
    j = cm.get("/console/api/dashboard/points?period=custom&from=x&to=2026-01-01")
    assert j.status_code == 422
    assert j.json()["errors"]["from"] == "Masukkan tarikh, contohnya 2026-01-31."


def test_the_chart_endpoints_answer_json_of_the_expected_shape(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    build(client, tenant)
    c = console_as("owner")
    want = expected(db, tenant, today() - timedelta(days=29), today())
    got = {}
    for name in JSON_ENDPOINTS:
        r = c.get(f"/console/api/dashboard/{name}?period=30")
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["empty"] is False, name
        assert body["from"] == str(today() - timedelta(days=29))
        assert body["to"] == str(today())
        got[name] = body
    points = got["points"]
    assert points["type"] == "line"
    assert len(points["labels"]) == 30  # a point per day up to 31 days
    by_key = {d["key"]: d["data"] for d in points["datasets"]}
    assert sum(by_key["issued"]) == want["points"]["issued"]
    assert sum(by_key["redeemed"]) == want["points"]["redeemed"]
    assert sum(by_key["expired"]) == want["points"]["expired"]
    weekly = c.get("/console/api/dashboard/points?period=90").json()
    assert len(weekly["labels"]) == 13  # weeks over 90 days
    assert sum(weekly["datasets"][0]["data"]) >= want["points"]["issued"]
    tiers = got["tiers"]
    assert tiers["labels"] == ["Bronze", "Gold"]
    assert sum(tiers["datasets"][0]["data"]) == 6  # every active member, the base tier included
    with db.session() as s:
        tenant_row = s.get(Tenant, tenant.tenant_id)
        assert tenant_row is not None
        summary = tier_view.summary(
            s, tenant_row, tier_service.require_structure(s, tenant.program_id)
        )
    assert tiers["datasets"][0]["data"] == [row["members"] for row in summary]
    labels = got["labels"]
    assert labels["type"] == "doughnut"
    assert "Happy" in labels["labels"]
    assert "Loyal" in labels["labels"]
    assert sum(labels["datasets"][0]["data"]) == want["scored"]
    assert labels["note"].startswith("As of ")
    types = got["loyalty-types"]
    assert types["labels"] == ["Habitual", "Transactional", "Emotional", "No clear type"]
    assert sum(types["datasets"][0]["data"]) == want["scored"]
    cohorts = got["cohorts"]
    assert cohorts["type"] == "heatmap"
    assert cohorts["columns"][:3] == ["Cohort", "Members", "Month 0"]
    assert sum(row["size"] for row in cohorts["rows"]) == 5  # everyone who ever bought
    assert all(row["cells"][0]["share"] == 1.0 for row in cohorts["rows"])
    rewards = got["rewards"]
    assert rewards["labels"] == ["Free coffee"]
    assert rewards["datasets"][0]["data"] == [2]


def test_an_empty_tenant_gets_friendly_empty_states(
    db: Database, console_as: Callable[..., ConsoleClient]
) -> None:
    other = make_tenant(db, name="Kosong")
    c = console_as("owner", tenant_id=other.tenant_id)
    r = c.get("/console")
    assert r.status_code == 200
    assert "There are no members yet." in r.text
    assert tile(r.text, "members") == "0"
    assert tile(r.text, "repeat") == "—"
    for name in JSON_ENDPOINTS:
        body = c.get(f"/console/api/dashboard/{name}").json()
        assert body["empty"] is True, name
        assert body["empty_text"], name


def test_roles_on_the_dashboard(
    client: TestClient, tenant: TenantFixture, console_as: Callable[..., ConsoleClient]
) -> None:
    cashier = console_as("cashier")
    r = cashier.get("/console", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/pos"
    for name in JSON_ENDPOINTS:
        assert cashier.get(f"/console/api/dashboard/{name}").status_code == 403
    for role in ("owner", "admin", "marketer", "analyst"):
        c = console_as(role)
        r = c.get("/console")
        assert r.status_code == 200, role
        assert "<h1>Dashboard</h1>" in r.text
        assert c.get("/console/api/dashboard/labels").status_code == 200
    # signed out: to the sign-in page
    anon = client.get("/console/api/dashboard/points", follow_redirects=False)
    assert anon.status_code == 303


def test_the_dashboard_escapes_reward_names(
    client: TestClient, tenant: TenantFixture, console_as: Callable[..., ConsoleClient]
) -> None:
    ids = build(client, tenant)
    r = client.put(
        f"/v1/programs/{tenant.program_id}/rewards/XSS",
        json={"kind": "physical", "names": {"en": "<script>alert(1)</script>"}, "points": 10},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    _post(
        client,
        tenant,
        f"/v1/members/{ids['citra']}/points/adjust",
        {"points": 50, "reason": "bonus"},
    )
    _post(client, tenant, f"/v1/members/{ids['citra']}/redemptions", {"reward": "XSS"})
    body = console_as("owner").get("/console/api/dashboard/rewards").json()
    # JSON carries the text; charts.js only ever sets textContent and Chart.js draws on canvas
    assert "<script>alert(1)</script>" in body["labels"]


def test_the_figures_follow_new_data_at_once(
    client: TestClient, tenant: TenantFixture, console_as: Callable[..., ConsoleClient]
) -> None:
    """The period figures are kept between views only until an order or a ledger transfer
    is added: the next view after a purchase shows it."""
    build(client, tenant)
    c = console_as("owner")
    assert tile(c.get("/console?period=7").text, "active") == "3"
    assert tile(c.get("/console?period=7").text, "active") == "3"
    _post(
        client,
        tenant,
        "/v1/events",
        {
            "id": "fajar-first",
            "type": "purchase",
            "member": {"external_id": "fajar"},
            "order_id": "fajar-1",
            "amount": "20000",
            "currency": "IDR",
        },
    )
    r = c.get("/console?period=7")
    assert tile(r.text, "active") == "4"
    assert (
        tile(
            c.get("/console/analytics?period=7").text.replace(
                '<div class="stat">', '<div class="stat" id="stat-x">', 1
            ),
            "x",
        )
        == "4"
    )
