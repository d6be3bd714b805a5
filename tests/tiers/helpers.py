"""Shared by the tier tests: a standard three-tier structure and short-hands."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.rules.helpers import Api


def names(id_: str, ms: str, en: str) -> dict[str, str]:
    return {"id": id_, "ms": ms, "en": en}


def tier_set(**kw: Any) -> dict[str, Any]:
    """Perunggu → Perak (Rp 1.000.000) → Emas (Rp 5.000.000) on spend in the calendar year,
    kept until the end of the next year, one level at a time."""
    body: dict[str, Any] = {
        "name": "Kopi tiers",
        "metrics": [{"metric": "spend"}],
        "window": {"kind": "calendar_year"},
        "retention": {"kind": "end_of_next_window"},
        "downgrade": "one_level",
        "tiers": [
            {"code": "bronze", "names": names("Perunggu", "Gangsa", "Bronze"), "thresholds": ["0"]},
            {
                "code": "silver",
                "names": names("Perak", "Perak", "Silver"),
                "thresholds": ["1000000"],
                "earn_multiplier": "1.25",
            },
            {
                "code": "gold",
                "names": names("Emas", "Emas", "Gold"),
                "thresholds": ["5000000"],
                "earn_multiplier": "1.5",
                "perks": [
                    {
                        "id": "Kopi gratis di hari ulang tahun",
                        "ms": "Kopi percuma",
                        "en": "Free coffee",
                    }
                ],
            },
        ],
    }
    body.update(kw)
    return body


def setup(api: Api, **kw: Any) -> dict[str, Any]:
    r = api.put(f"/v1/programs/{api.tenant.program_id}/tier-set", tier_set(**kw))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def member_id(result: dict[str, Any]) -> str:
    return str(result["member_id"])


def view(api: Api, member: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/v1/members/{member}/tier", params=params)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def evaluate(api: Api, on: date) -> dict[str, Any]:
    r = api.post(f"/v1/programs/{api.tenant.program_id}/tier-set/evaluate", {"on": on.isoformat()})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def history(api: Api, member: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/members/{member}/tier/history")
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out
