"""What counts towards a tier: spend, visits, orders, points and custom-event counts, two
metrics combined with any/all, and the progress figure and sentence at the window's edges."""

from __future__ import annotations

from datetime import date
from typing import Any

from setia.core.db import Database
from tests.rules.helpers import Api, local
from tests.tiers.conftest import Clock
from tests.tiers.helpers import code_of, evaluate, member_id, names, refund, setup, view


def two_metrics(combine: str) -> dict[str, Any]:
    """Perak: Rp 1.000.000 or/and 3 visits; Emas: Rp 5.000.000 or/and 10 visits."""
    return {
        "metrics": [{"metric": "spend"}, {"metric": "visits"}],
        "combine": combine,
        "tiers": [
            {"code": "bronze", "names": names("Perunggu", "Gangsa", "Bronze"), "thresholds": ["0", "0"]},
            {"code": "silver", "names": names("Perak", "Perak", "Silver"), "thresholds": ["1000000", "3"]},
            {"code": "gold", "names": names("Emas", "Emas", "Gold"), "thresholds": ["5000000", "10"]},
        ],
    }  # fmt: skip


def figures(api: Api, m: str) -> list[str]:
    return [f["value"] for f in view(api, m)["figures"]]


def test_visits_are_days_with_an_order(api: Api, clock: Clock) -> None:
    setup(api, **two_metrics("any"))
    m = member_id(api.purchase(20_000, at=local(2025, 5, 1, 8)))
    api.purchase(20_000, at=local(2025, 5, 1, 19))  # same local day: still one visit
    api.purchase(20_000, at=local(2025, 5, 2), order_id="SOLE")
    clock.set(2025, 5, 2, 20)
    assert figures(api, m) == ["60000", "2"]
    # Fully refunding the day's only order takes the visit back; a partial refund does not.
    refund(api, "SOLE", 5_000, at=local(2025, 5, 2, 21))
    assert figures(api, m) == ["55000", "2"]
    refund(api, "SOLE", 15_000, at=local(2025, 5, 2, 22))
    assert figures(api, m) == ["40000", "1"]
    assert code_of(api, m) == "bronze"
    api.purchase(20_000, at=local(2025, 5, 3))
    api.purchase(20_000, at=local(2025, 5, 4))
    clock.set(2025, 5, 4, 20)
    assert figures(api, m) == ["80000", "3"]
    assert code_of(api, m) == "silver"  # any: three visits are enough without the spend


def test_all_needs_both_thresholds(api: Api, clock: Clock) -> None:
    setup(api, **two_metrics("all"))
    m = member_id(api.purchase(2_000_000, at=local(2025, 5, 1)))
    api.purchase(10_000, at=local(2025, 5, 2))
    clock.set(2025, 5, 2, 20)
    assert code_of(api, m) == "bronze"  # Rp 2.010.000 but 2 visits
    v = view(api, m, locale="id")
    assert v["progress"]["message"] == "1 kunjungan lagi sebelum 31 Des 2025 untuk mencapai Perak"
    api.purchase(10_000, at=local(2025, 5, 3))
    assert code_of(api, m) == "silver"


def test_orders_points_and_event_counts(api: Api, clock: Clock) -> None:
    body = two_metrics("any")
    body["metrics"] = [{"metric": "orders"}, {"metric": "points"}]
    body["tiers"][1]["thresholds"] = ["3", "1000"]
    body["tiers"][2]["thresholds"] = ["100", "100000"]
    setup(api, **body)
    # Base earn rate: 1 point per Rp 1.000.
    m = member_id(api.purchase(100_000, at=local(2025, 5, 1), order_id="A"))
    api.purchase(100_000, at=local(2025, 5, 1), order_id="B")
    clock.set(2025, 5, 1, 20)
    assert figures(api, m) == ["2", "200"]
    refund(api, "B", 100_000, at=local(2025, 5, 1, 21))  # a fully refunded order: gone
    refund(api, "A", 50_000, at=local(2025, 5, 1, 21))  # half: the order still counts
    assert figures(api, m) == ["1", "50"]
    api.purchase(1_000_000, at=local(2025, 5, 1, 22))
    assert figures(api, m) == ["2", "1050"]
    assert code_of(api, m) == "silver"  # points, not orders, got there


def test_custom_event_count(api: Api, clock: Clock) -> None:
    setup(
        api,
        metrics=[{"metric": "event", "event_type": "review.submitted"}],
        tiers=[
            {"code": "bronze", "names": names("Perunggu", "Gangsa", "Bronze"), "thresholds": ["0"]},
            {"code": "silver", "names": names("Perak", "Perak", "Silver"), "thresholds": ["2"]},
        ],
    )
    m = member_id(api.custom("review.submitted", at=local(2025, 5, 1)))
    api.custom("profile.completed", at=local(2025, 5, 1))  # another type: does not count
    api.purchase(5_000_000, at=local(2025, 5, 1))  # spend does not count here
    clock.set(2025, 5, 1, 20)
    assert figures(api, m) == ["1"]
    en = view(api, m, locale="en")["progress"]["message"]
    assert en == "1 × review.submitted to go before 31 Dec 2025 for Silver"
    api.custom("review.submitted", at=local(2025, 5, 2))
    assert code_of(api, m) == "silver"


def test_progress_on_the_first_and_last_day_of_the_window(
    api: Api, db: Database, clock: Clock
) -> None:
    """Calendar year 2025: on 1 Jan only that day counts (not 31 Dec 2024, not later
    purchases) and the deadline is 31 Dec; on 31 Dec everything of 2025 counts."""
    setup(api, **two_metrics("any"))
    m = member_id(api.purchase(900_000, at=local(2024, 12, 31, 23, 59)))
    api.purchase(100_000, at=local(2025, 1, 1, 0, 0))
    clock.set(2025, 1, 1, 0, 1)
    v = view(api, m, locale="id")
    assert v["window"] == {"kind": "calendar_year", "start": "2025-01-01", "end": "2025-12-31"}
    assert [f["value"] for f in v["figures"]] == ["100000", "1"]
    p = v["progress"]
    assert (p["next_tier"]["code"], p["deadline"]) == ("silver", "2025-12-31")
    assert [r["missing"] for r in p["remaining"]] == ["900000", "2"]
    assert (
        p["message"]
        == "Rp\xa0900.000 atau 2 kunjungan lagi sebelum 31 Des 2025 untuk mencapai Perak"
    )
    # 31 Dec 2024, the last day of the previous window, counted for that one.
    clock.set(2024, 12, 31, 23, 59)
    v = view(api, m, locale="en")
    assert [f["value"] for f in v["figures"]] == ["900000", "1"]
    assert v["progress"]["message"] == (
        "Rp\xa0100,000 or 2 visits to go before 31 Dec 2024 for Silver"
    )
    api.purchase(200_000, at=local(2025, 6, 1))
    api.purchase(300_000, at=local(2025, 12, 31, 23, 59))
    # Seen from 1 Jan, later days of the window do not count yet.
    clock.set(2025, 1, 1, 0, 1)
    assert [f["value"] for f in view(api, m)["figures"]] == ["100000", "1"]
    # The last day of 2025: everything of 2025 counts, still before 31 Dec 2025.
    clock.set(2025, 12, 31, 23, 59)
    v = view(api, m, locale="ms")
    assert [f["value"] for f in v["figures"]] == ["600000", "3"]
    assert v["tier"]["code"] == "silver"  # three visits reached Perak on 31 Dec
    assert v["progress"]["message"] == (
        "Rp\xa04,400,000 atau 7 lawatan lagi sebelum 31 Dis 2025 untuk mencapai Emas"
    )


def test_progress_sentence_for_spend_only(api: Api, clock: Clock) -> None:
    setup(api)
    m = member_id(api.purchase(750_000, at=local(2025, 3, 1)))
    clock.set(2025, 3, 1)
    msgs = {lang: view(api, m, locale=lang)["progress"]["message"] for lang in ("id", "ms", "en")}
    assert msgs == {
        "id": "Rp\xa0250.000 lagi sebelum 31 Des 2025 untuk mencapai Perak",
        "ms": "Rp\xa0250,000 lagi sebelum 31 Dis 2025 untuk mencapai Perak",
        "en": "Rp\xa0250,000 to go before 31 Dec 2025 for Silver",
    }
    api.purchase(5_000_000, at=local(2025, 3, 1))
    assert view(api, m, locale="id")["progress"]["message"] == "Anda sudah di tingkat tertinggi."


def test_next_evaluation_forecast(api: Api, clock: Clock) -> None:
    """The view says what tonight's evaluation will do, and it does that."""
    setup(api, at_risk_days=10)
    m = member_id(api.purchase(1_500_000, at=local(2025, 3, 1)))
    clock.set(2026, 12, 31)
    v = view(api, m, locale="en")
    assert v["next_evaluation"]["action"] == "downgrade"
    assert v["next_evaluation"]["message"] == "Next evaluation (1 Jan 2027): moves down to Bronze."
    assert v["at_risk"]["message"] == "Without more activity, Silver drops to Bronze on 1 Jan 2027."
    clock.set(2026, 12, 30)
    assert view(api, m)["next_evaluation"]["action"] == "stay"
    evaluate(api, date(2027, 1, 1))
    assert code_of(api, m) == "bronze"
