"""The console's analytics pages: KPIs, RFM segments, labels and types from the stored
scores, saved segments (create, list, members, delete), CSV export and "recompute now";
roles and CSRF."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.analytics import segments as seg_service
from setia.analytics.tables import AnalyticsFit, AnalyticsSegment, MemberScore
from setia.core.db import Database
from tests.conftest import TenantFixture
from tests.web.conftest import ConsoleClient
from tests.web.test_dashboard import build, field_error

SEGMENT = {
    "key": "vip-at-risk",
    "name_id": "VIP berisiko",
    "name_en": "VIP at risk",
    "loyalty_label": ["happy", "loyal", "at_risk", "new", "lost", "dissatisfied", "none"],
    "min_orders": "2",
}


def count_rows(db: Database, model: Any) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def stored(db: Database, t: TenantFixture, column: Any) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(
            select(column, func.count())
            .where(MemberScore.program_id == t.program_id)
            .group_by(column)
        ).all()
    return {str(k): int(n) for k, n in rows if k is not None}


def table_counts(html: str, param: str) -> dict[str, int]:
    """Members per linked row of a table (``?segment=x`` / ``?label=x`` links)."""
    out = {}
    for code, n in re.findall(
        rf'href="/console/analytics/members\?{param}=([a-z_]+)">[^<]*</a></th><td class="num">([\d,]+)</td>',
        html,
    ):
        out[code] = int(n.replace(",", ""))
    return out


def test_the_analytics_page_shows_kpis_segments_and_labels(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    build(client, tenant)
    c = console_as("analyst")
    r = c.get("/console/analytics?period=30")
    assert r.status_code == 200
    assert "<h1>Analytics</h1>" in r.text
    assert "Retention rate" in r.text
    assert "Average order value" in r.text
    segments = stored(db, tenant, MemberScore.rfm_segment)
    assert sum(segments.values()) == 5
    assert table_counts(r.text, "segment") == segments
    labels = {k: v for k, v in stored(db, tenant, MemberScore.loyalty_label).items() if v}
    assert table_counts(r.text, "label") == labels
    types = stored(db, tenant, MemberScore.loyalty_type)
    assert table_counts(r.text, "loyalty_type") == types
    assert "from the scores computed" in r.text
    # analysts read and export, but neither recompute nor create segments: no such buttons
    assert "Recompute now" not in r.text
    assert "/console/analytics/segments/new" not in r.text
    assert "/console/analytics/export/rfm.csv" in r.text
    # a wrong period is a message next to the field, not an error page
    bad = c.get("/console/analytics?period=custom&from=2026-01-40&to=2026-02-01")
    assert bad.status_code == 422
    assert field_error(bad.text, "from") == "Enter a date, for example 2026-01-31."


def test_member_lists_per_segment_and_label_link_to_the_member_page(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    ids = build(client, tenant)
    r = client.patch(
        f"/v1/members/{ids['ani']}",
        json={"name": "<script>alert(1)</script>"},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    c = console_as("marketer")
    with db.session() as s:
        score = s.get(MemberScore, (tenant.program_id, uuid.UUID(ids["ani"])))
        assert score is not None
        label, segment = score.loyalty_label, score.rfm_segment
    r = c.get(f"/console/analytics/members?label={label}")
    assert r.status_code == 200
    assert f'href="/console/members/{ids["ani"]}"' in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "<script>alert(1)</script>" not in r.text
    r = c.get(f"/console/analytics/members?segment={segment}")
    assert f'href="/console/members/{ids["ani"]}"' in r.text
    everyone = c.get("/console/analytics/members")
    assert everyone.text.count('href="/console/members/') == 5
    assert "fajar" not in everyone.text  # no purchase, no scores


def test_a_marketer_saves_a_segment_and_sees_its_members(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    ids = build(client, tenant)
    c = console_as("marketer")
    assert c.get("/console/analytics/segments/new").status_code == 200
    r = c.post("/console/analytics/segments", SEGMENT)
    assert r.status_code == 303, r.text
    with db.session() as s:
        seg = s.scalars(select(AnalyticsSegment)).one()
        assert seg.key == "vip-at-risk"
        assert seg.names == {"id": "VIP berisiko", "en": "VIP at risk"}
        assert seg.filter["all"][1] == {"field": "orders", "op": "gte", "value": 2}
        want = seg_service.segment_member_ids(s, tenant.tenant_id, seg.id)
        seg_id = seg.id
    assert r.headers["location"] == f"/console/analytics/segments/{seg_id}"
    assert len(want) == 2  # ani and budi bought twice
    page = c.get(r.headers["location"])
    assert page.status_code == 200
    assert "Segment VIP at risk saved." in page.text
    assert "2 members now" in page.text
    for mid in want:
        assert f'href="/console/members/{mid}"' in page.text
    assert f'href="/console/members/{ids["citra"]}"' not in page.text
    listing = c.get("/console/analytics")
    assert f'href="/console/analytics/segments/{seg_id}"' in listing.text
    assert "VIP at risk" in listing.text
    # the same key and conditions again is the same segment (a double submit)
    again = c.post("/console/analytics/segments", SEGMENT)
    assert again.status_code == 303
    assert count_rows(db, AnalyticsSegment) == 1
    # the same key with other conditions: a message next to the key, nothing saved
    other = c.post("/console/analytics/segments", {**SEGMENT, "min_orders": "3"})
    assert other.status_code == 409
    assert (
        field_error(other.text, "key")
        == "Another segment already uses this key with other conditions."
    )
    assert count_rows(db, AnalyticsSegment) == 1


def test_segment_form_errors_are_next_to_the_field_in_the_users_language(
    db: Database, console_as: Callable[..., ConsoleClient]
) -> None:
    c = console_as("marketer", lang="ms")
    r = c.post(
        "/console/analytics/segments",
        {"key": "Bukan Kunci!", "min_p_alive": "150", "max_recency_days": "abc"},
    )
    assert r.status_code == 422
    assert field_error(r.text, "key") == (
        "Gunakan 1 hingga 64 huruf kecil, digit, '-' atau '_', bermula dengan huruf atau digit."
    )
    assert field_error(r.text, "name_id") == (
        "Berikan nama dalam Bahasa Indonesia atau bahasa Inggeris, sekurang-kurangnya satu."
    )
    assert field_error(r.text, "min_p_alive") is not None
    assert field_error(r.text, "max_recency_days") is not None
    assert 'value="Bukan Kunci!"' in r.text  # what was typed stays in the form
    r = c.post("/console/analytics/segments", {"key": "kosong", "name_en": "Empty"})
    assert r.status_code == 422
    assert "Pilih sekurang-kurangnya satu syarat." in r.text
    r = c.post(
        "/console/analytics/segments",
        {"key": "json", "name_en": "JSON", "filter_json": "{not json"},
    )
    assert field_error(r.text, "filter_json") == "Ini bukan JSON yang sah."
    r = c.post(
        "/console/analytics/segments",
        {
            "key": "json",
            "name_en": "JSON",
            "filter_json": '{"field": "no_such_field", "op": "eq", "value": 1}',
        },
    )
    assert r.status_code == 422
    assert (field_error(r.text, "filter_json") or "").startswith("Penapis ini tidak sah:")
    ok = c.post(
        "/console/analytics/segments",
        {
            "key": "json",
            "name_en": "JSON",
            "filter_json": '{"field": "rfm_segment", "op": "in", "value": ["champions"]}',
        },
    )
    assert ok.status_code == 303
    assert count_rows(db, AnalyticsSegment) == 1


def test_deleting_a_segment_asks_first(
    db: Database, console_as: Callable[..., ConsoleClient]
) -> None:
    c = console_as("marketer")
    c.post("/console/analytics/segments", SEGMENT)
    with db.session() as s:
        seg_id = s.scalars(select(AnalyticsSegment.id)).one()
    confirm = c.get(f"/console/analytics/segments/{seg_id}/delete")
    assert confirm.status_code == 200
    assert "Delete segment VIP at risk?" in confirm.text
    assert count_rows(db, AnalyticsSegment) == 1
    analyst = console_as("analyst")
    assert analyst.get(f"/console/analytics/segments/{seg_id}/delete").status_code == 403
    assert analyst.post(f"/console/analytics/segments/{seg_id}/delete").status_code == 403
    assert c.post(f"/console/analytics/segments/{seg_id}/delete", csrf=False).status_code == 403
    assert count_rows(db, AnalyticsSegment) == 1
    r = c.post(f"/console/analytics/segments/{seg_id}/delete")
    assert r.status_code == 303
    assert count_rows(db, AnalyticsSegment) == 0
    assert c.get(f"/console/analytics/segments/{seg_id}").status_code == 404
    assert c.get("/console/analytics/segments/not-an-id").status_code == 404


def test_roles_and_csrf_on_analytics(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    build(client, tenant)
    fits = count_rows(db, AnalyticsFit)
    analyst = console_as("analyst")
    assert analyst.get("/console").status_code == 200
    assert analyst.get("/console/analytics").status_code == 200
    assert analyst.get("/console/analytics/segments/new").status_code == 403
    r = analyst.post("/console/analytics/segments", SEGMENT)
    assert r.status_code == 403
    assert "Your role does not allow this." in r.text
    assert analyst.post("/console/analytics/recompute").status_code == 403
    assert count_rows(db, AnalyticsSegment) == 0
    assert count_rows(db, AnalyticsFit) == fits
    cashier = console_as("cashier")
    for url in (
        "/console/analytics",
        "/console/analytics/members",
        "/console/analytics/export/members.csv",
    ):
        assert cashier.get(url).status_code == 403, url
    # CSRF: a form without the session's token writes nothing
    marketer = console_as("marketer")
    r = marketer.post("/console/analytics/segments", SEGMENT, csrf=False)
    assert r.status_code == 403
    assert "Nothing was saved." in r.text
    r = marketer.post(
        "/console/analytics/segments", {**SEGMENT, "csrf_token": "forged"}, csrf=False
    )
    assert r.status_code == 403
    assert marketer.post("/console/analytics/recompute", csrf=False).status_code == 403
    assert count_rows(db, AnalyticsSegment) == 0
    assert count_rows(db, AnalyticsFit) == fits


def test_recompute_now(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    build(client, tenant)
    # one more buyer after the last recompute: not scored until recomputed
    r = client.post(
        "/v1/events",
        json={
            "id": "late-buy",
            "type": "purchase",
            "member": {"external_id": "gita"},
            "order_id": "late-1",
            "amount": "50000",
            "currency": "IDR",
        },
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    assert count_rows(db, MemberScore) == 5
    fits = count_rows(db, AnalyticsFit)
    c = console_as("owner")
    page = c.get("/console/analytics")
    assert "Recompute now" in page.text
    r = c.post("/console/analytics/recompute", {"next": "/console/analytics"})
    assert r.status_code == 303
    assert r.headers["location"] == "/console/analytics"
    assert count_rows(db, AnalyticsFit) == fits + 1
    assert count_rows(db, MemberScore) == 6
    after = c.get("/console/analytics")
    assert "Scores recomputed for 6 members." in after.text
    # the redirect never leaves the console
    r = c.post("/console/analytics/recompute", {"next": "https://evil.example/"})
    assert r.headers["location"] == "/console/analytics"


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_exports_are_the_apis_files(
    client: TestClient,
    tenant: TenantFixture,
    console_as: Callable[..., ConsoleClient],
) -> None:
    ids = build(client, tenant)
    c = console_as("analyst")
    for report, api in (
        ("rfm.csv", "/v1/analytics/rfm?format=csv"),
        ("labels.csv", "/v1/analytics/labels?format=csv"),
        ("members.csv", "/v1/analytics/members?format=csv"),
    ):
        mine = c.get(f"/console/analytics/export/{report}")
        assert mine.status_code == 200, report
        assert mine.headers["content-type"].startswith("text/csv")
        assert mine.headers["content-disposition"].startswith("attachment; filename=")
        theirs = client.get(api, headers=tenant.headers)
        assert theirs.status_code == 200
        assert _rows(mine.text) == _rows(theirs.text), report
    members = _rows(c.get("/console/analytics/export/members.csv").text)
    assert {r["member_id"] for r in members} == {
        ids[m] for m in ("ani", "budi", "citra", "dewi", "eko")
    }
    assert list(members[0]) == [
        "member_id",
        "segment",
        "r",
        "f",
        "m",
        "recency_days",
        "orders",
        "spend",
        "p_alive",
        "expected_purchases",
        "clv",
        "label",
        "loyalty_type",
    ]
    ani = next(r for r in members if r["member_id"] == ids["ani"])
    assert ani["orders"] == "2"
    assert ani["spend"] == "210000"
    # filtered like the API's ?label=
    label = ani["label"]
    mine = _rows(c.get(f"/console/analytics/export/members.csv?label={label}").text)
    theirs = _rows(
        client.get(f"/v1/analytics/members?format=csv&label={label}", headers=tenant.headers).text
    )
    assert mine == theirs
    assert ids["ani"] in {r["member_id"] for r in mine}
    assert c.get("/console/analytics/export/secrets.csv").status_code == 404
