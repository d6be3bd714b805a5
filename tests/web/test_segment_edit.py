"""Console: editing a saved segment (rename, key, filter from the builder or as JSON), with
errors next to the fields, 409 for a key another segment uses or a segment changed since the
form was opened; roles and CSRF."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from sqlalchemy import select

from setia.analytics import segments as seg_service
from setia.analytics.tables import AnalyticsSegment
from setia.core.db import Database
from tests.conftest import TenantFixture
from tests.web.conftest import (
    ConsoleClient,
    LiveServer,
    StaffLogin,
    browser_session,
    browser_wait,
    shot,
)
from tests.web.test_dashboard import build, field_error

BUILDER = {
    "all": [
        {"field": "loyalty_label", "op": "in", "value": ["happy", "loyal"]},
        {"field": "orders", "op": "gte", "value": 2},
        {"field": "consent.whatsapp", "op": "eq", "value": True},
    ]
}


def _segment(
    db: Database, tenant: TenantFixture, key: str = "vip", flt: dict[str, Any] | None = None
) -> uuid.UUID:
    with db.session() as s:
        seg, _ = seg_service.create(
            s,
            tenant.tenant_id,
            seg_service.SegmentDoc(
                key=key,
                names={"id": "Pelanggan VIP", "en": "VIP customers"},
                descriptions={"en": "Kept as it is"},
                filter=flt or BUILDER,
                program_id=tenant.program_id,
            ),
            actor="test",
        )
        s.commit()
        return seg.id


def _stored(db: Database, seg_id: uuid.UUID) -> AnalyticsSegment:
    with db.session() as s:
        seg = s.scalars(select(AnalyticsSegment).where(AnalyticsSegment.id == seg_id)).one()
        s.expunge(seg)
        return seg


def _form(**changes: Any) -> dict[str, Any]:
    return {
        "key": "vip",
        "name_id": "Pelanggan VIP",
        "name_en": "VIP customers",
        "version": "1",
        "loyalty_label": ["happy", "loyal"],
        "min_orders": "2",
        "whatsapp": "1",
        **changes,
    }


def test_the_form_is_prefilled_and_saving_changes_the_segment_and_its_members(
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
    console_as: Callable[..., ConsoleClient],
) -> None:
    build(client, tenant)
    seg_id = _segment(db, tenant)
    c = console_as("marketer")
    assert (
        f'href="/console/analytics/segments/{seg_id}/edit"'
        in c.get(f"/console/analytics/segments/{seg_id}").text
    )
    form = c.get(f"/console/analytics/segments/{seg_id}/edit")
    assert form.status_code == 200
    assert 'value="vip"' in form.text
    assert 'value="VIP customers"' in form.text
    assert 'name="version" value="1"' in form.text
    assert 'name="loyalty_label" value="happy" checked' in form.text
    assert 'name="loyalty_label" value="new" checked' not in form.text
    assert 'id="f-min_orders" name="min_orders" type="number"\n    value="2"' in form.text
    assert 'name="whatsapp" type="checkbox" value="1" checked' in form.text
    r = c.post(
        f"/console/analytics/segments/{seg_id}/edit",
        {
            "key": "buyers",
            "name_id": "Pembeli",
            "name_ms": "Pembeli",
            "name_en": "Buyers",
            "version": "1",
            "min_orders": "1",
        },
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/console/analytics/segments/{seg_id}"
    seg = _stored(db, seg_id)
    assert (seg.key, seg.version) == ("buyers", 2)
    assert seg.names == {"id": "Pembeli", "ms": "Pembeli", "en": "Buyers"}
    assert seg.descriptions == {"en": "Kept as it is"}
    assert seg.filter == {"all": [{"field": "orders", "op": "gte", "value": 1}]}
    with db.session() as s:
        members = seg_service.segment_member_ids(s, tenant.tenant_id, seg_id)
    assert len(members) == 5  # everyone who bought at least once
    page = c.get(r.headers["location"])
    assert "Segment Buyers saved." in page.text
    assert "5 members now" in page.text


def test_a_filter_the_builder_cannot_show_is_edited_as_json(
    tenant: TenantFixture, db: Database, console_as: Callable[..., ConsoleClient]
) -> None:
    flt = {
        "any": [
            {"field": "rfm_segment", "op": "in", "value": ["champions"]},
            {"field": "orders", "op": "gte", "value": 5},
        ]
    }
    seg_id = _segment(db, tenant, flt=flt)
    c = console_as("owner")
    form = c.get(f"/console/analytics/segments/{seg_id}/edit")
    assert "<details open>" in form.text
    assert "&#34;any&#34;" in form.text
    assert 'name="rfm_segment" value="champions" checked' not in form.text
    new = '{"not": {"field": "orders", "op": "gte", "value": 5}}'
    r = c.post(
        f"/console/analytics/segments/{seg_id}/edit",
        {"key": "vip", "name_en": "VIP customers", "version": "1", "filter_json": new},
    )
    assert r.status_code == 303, r.text
    assert _stored(db, seg_id).filter == {"not": {"field": "orders", "op": "gte", "value": 5}}


def test_bad_input_is_shown_next_to_the_fields_and_saves_nothing(
    tenant: TenantFixture, db: Database, console_as: Callable[..., ConsoleClient]
) -> None:
    seg_id = _segment(db, tenant)
    url = f"/console/analytics/segments/{seg_id}/edit"
    c = console_as("marketer", lang="ms")
    r = c.post(
        url,
        _form(key="Bukan Kunci!", name_id="", name_en="", min_p_alive="150", min_orders="x"),
    )
    assert r.status_code == 422
    assert field_error(r.text, "key") == (
        "Gunakan 1 hingga 64 huruf kecil, digit, '-' atau '_', bermula dengan huruf atau digit."
    )
    assert field_error(r.text, "name_id") == (
        "Berikan nama dalam Bahasa Indonesia atau bahasa Inggeris, sekurang-kurangnya satu."
    )
    assert field_error(r.text, "min_p_alive") is not None
    assert field_error(r.text, "min_orders") is not None
    assert 'value="Bukan Kunci!"' in r.text  # what was typed stays
    assert 'name="loyalty_label" value="happy" checked' in r.text
    r = c.post(url, _form(filter_json="{not json"))
    assert r.status_code == 422
    assert field_error(r.text, "filter_json") == "Ini bukan JSON yang sah."
    r = c.post(url, _form(filter_json='{"field": "nope", "op": "eq", "value": 1}'))
    assert r.status_code == 422
    assert (field_error(r.text, "filter_json") or "").startswith("Penapis ini tidak sah:")
    r = c.post(url, {"key": "vip", "name_en": "VIP", "version": "1"})
    assert r.status_code == 422
    assert "Pilih sekurang-kurangnya satu syarat." in r.text
    seg = _stored(db, seg_id)
    assert (seg.key, seg.version, seg.filter, seg.names["en"]) == (
        "vip",
        1,
        BUILDER,
        "VIP customers",
    )


def test_conflicts_are_409_with_a_clear_message(
    tenant: TenantFixture, db: Database, console_as: Callable[..., ConsoleClient]
) -> None:
    seg_id = _segment(db, tenant)
    _segment(db, tenant, key="lapsed", flt={"field": "recency_days", "op": "gte", "value": 90})
    url = f"/console/analytics/segments/{seg_id}/edit"
    c = console_as("owner", lang="id")
    r = c.post(url, _form(key="lapsed", name_en="Renamed"))
    assert r.status_code == 409
    assert field_error(r.text, "key") == ("Segmen lain sudah memakai kunci ini; pilih kunci lain.")
    assert 'value="Renamed"' in r.text
    # someone saved the segment after this form was opened: nothing is overwritten
    en = console_as("owner", lang="en")
    assert en.post(url, _form(name_en="First")).status_code == 303
    assert _stored(db, seg_id).version == 2
    stale = en.post(url, _form(name_en="Second", min_orders="9"))
    assert stale.status_code == 409
    alert = stale.text.split('id="err-__all__"')[1][:300]
    assert "Someone changed this segment since you opened the form; nothing was saved." in alert
    seg = _stored(db, seg_id)
    assert (seg.names["en"], seg.version, seg.filter) == ("First", 2, BUILDER)


def test_roles_and_csrf_are_enforced(
    tenant: TenantFixture, db: Database, console_as: Callable[..., ConsoleClient]
) -> None:
    seg_id = _segment(db, tenant)
    url = f"/console/analytics/segments/{seg_id}/edit"
    analyst = console_as("analyst")
    assert url not in analyst.get(f"/console/analytics/segments/{seg_id}").text
    assert analyst.get(url).status_code == 403
    assert analyst.post(url, _form(name_en="Nope")).status_code == 403
    assert console_as("cashier").post(url, _form(name_en="Nope")).status_code == 403
    assert console_as("marketer").post(url, _form(name_en="Nope"), csrf=False).status_code == 403
    seg = _stored(db, seg_id)
    assert (seg.names["en"], seg.version) == ("VIP customers", 1)
    assert (
        console_as("owner").get(f"/console/analytics/segments/{uuid.uuid4()}/edit").status_code
        == 404
    )


def test_the_segment_edit_form_in_the_browser(
    browser: Any,
    live_server: LiveServer,
    tenant: TenantFixture,
    db: Database,
    staff_user: Callable[..., StaffLogin],
) -> None:
    seg_id = _segment(db, tenant)
    browser_session(browser, live_server, staff_user("owner"))
    browser.get(f"{live_server.url}/console/analytics/segments/{seg_id}/edit")
    browser_wait(browser, 10).until(ec.presence_of_element_located((By.ID, "f-key")))
    shot(browser, "console-segment-edit")
    name = browser.find_element(By.ID, "f-name_en")
    name.clear()
    name.send_keys("Loyal buyers")
    browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
    browser_wait(browser, 10).until(
        ec.url_to_be(f"{live_server.url}/console/analytics/segments/{seg_id}")
    )
    assert "Loyal buyers" in browser.find_element(By.TAG_NAME, "h1").text
    assert _stored(db, seg_id).names["en"] == "Loyal buyers"
