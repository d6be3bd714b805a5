"""Event and member facts as the events service gives them to conditions, end to end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from setia.core.db import Database
from setia.members.models import Member
from tests.rules.helpers import Api, by_rule, local, not_fired


def when(api: Api, name: str, field: str, op: str, value: object) -> None:
    api.add_rule(name=name, conditions={"field": field, "op": op, "value": value})


def test_event_fields_from_the_payload(api: Api) -> None:
    when(api, "Store", "event.store", "eq", "bandung-dago")
    when(api, "Channel", "event.channel", "in", ["app", "web"])
    when(api, "QRIS", "event.payment_method", "eq", "qris")
    when(api, "IDR", "event.currency", "eq", "IDR")
    when(api, "Big", "event.amount", "gte", "100000")
    when(api, "Three units", "event.item_count", "gte", 3)
    when(api, "Source", "event.attributes.source", "eq", "promo-ig")
    res = api.purchase(
        120_000,
        store="bandung-dago",
        channel="app",
        payment_method="qris",
        attributes={"source": "promo-ig"},
        items=[{"sku": "A", "quantity": 3, "unit_price": "40000"}],
    )
    assert set(by_rule(res)) == {"Base earn rate", "Store", "Channel", "QRIS", "IDR", "Big",
                                 "Three units", "Source"}  # fmt: skip
    res = api.purchase(99_000, store="online", channel="pos", payment_method="cash")
    assert set(by_rule(res)) == {"Base earn rate", "IDR"}
    assert not_fired(res)["Source"]["details"]["missing"] is True
    assert not_fired(res)["Three units"]["details"]["actual"] == "0"


def test_local_time_fields(api: Api) -> None:
    when(api, "Morning", "event.local_hour", "lt", 10)
    when(api, "Sunday", "event.local_day_of_week", "eq", "sun")
    when(api, "December", "event.local_month", "eq", 12)
    when(api, "New year's eve", "event.local_date", "eq", "2025-12-31")
    when(api, "Before 7", "event.local_time", "lt", "07:00")
    # 31 Dec 2025 was a Wednesday; 06:30 in Jakarta is 30 Dec 23:30 UTC.
    res = api.purchase(at=local(2025, 12, 31, 6, 30))
    assert set(by_rule(res)) == {"Base earn rate", "Morning", "December", "New year's eve",
                                 "Before 7"}  # fmt: skip
    assert not_fired(res)["Sunday"]["details"]["actual"] == "wed"


def test_first_purchase_and_order_count(api: Api) -> None:
    when(api, "First", "member.is_first_purchase", "eq", True)
    when(api, "Third order", "member.order_count", "eq", 2)
    a = api.purchase(at=local(2026, 1, 5, 9))
    b = api.purchase(at=local(2026, 1, 6, 9))
    c = api.purchase(at=local(2026, 1, 7, 9))
    assert [set(by_rule(x)) - {"Base earn rate"} for x in (a, b, c)] == [
        {"First"},
        set(),
        {"Third order"},
    ]
    # Orders count by when they happened: one recorded late, dated before all, sees none.
    early = api.purchase(at=local(2026, 1, 1, 9))
    assert "First" in by_rule(early)
    # A custom event is never a first purchase, but sees the order count.
    review = api.custom("review.submitted", at=local(2026, 2, 1, 9))
    assert review["points"]["earned"] == 0


def test_two_orders_at_the_same_instant_are_not_both_a_first_purchase(api: Api) -> None:
    """POS clocks often have second precision: two receipts in one second."""
    when(api, "First", "member.is_first_purchase", "eq", True)
    at = local(2026, 1, 5, 9)
    first, second = api.purchase(at=at), api.purchase(at=at)
    assert "First" in by_rule(first)
    assert "First" not in by_rule(second)
    assert not_fired(second)["First"]["details"]["actual"] is False


def test_member_profile_fields(api: Api, db: Database) -> None:
    when(api, "Gold", "member.tags", "contains", "gold")
    when(api, "English", "member.locale", "eq", "en")
    when(api, "Bandung", "member.attributes.city", "eq", "Bandung")
    when(api, "Birthday month", "member.birthday_month", "eq", True)
    when(api, "Loyal", "member.tenure_days", "gte", 365)
    r = api.post(
        "/v1/members",
        {"external_id": "M1", "tags": ["gold"], "locale": "en", "birthday": "1990-01-20",
         "attributes": {"city": "Bandung"}},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    with db.session() as s:
        member = s.get(Member, uuid.UUID(r.json()["id"]))
        assert member is not None
        member.created_at = datetime(2024, 12, 1, tzinfo=UTC)
    jan = api.purchase(at=local(2026, 1, 10, 12))
    assert set(by_rule(jan)) == {"Base earn rate", "Gold", "English", "Bandung",
                                 "Birthday month", "Loyal"}  # fmt: skip
    nov = api.purchase(at=local(2025, 11, 10, 12))
    assert not_fired(nov)["Birthday month"]["reason"] == "condition_false"
    assert not_fired(nov)["Loyal"]["details"]["actual"] == 344
    other = api.purchase(at=local(2026, 1, 10, 12), member="M2")
    assert set(by_rule(other)) == {"Base earn rate"}
