"""Code patterns and generation, CSV import, listing, export."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from setia.core.db import Database
from setia.coupons import codes, service
from tests.conftest import TenantFixture
from tests.coupons.conftest import counts, generate, make_campaign, new_member, tx

AMBIGUOUS = set("01ILOU")


def test_alphabet_has_no_ambiguous_characters() -> None:
    assert not AMBIGUOUS & set(codes.ALPHANUMERIC)
    assert len(set(codes.ALPHANUMERIC)) == len(codes.ALPHANUMERIC) == 30
    assert set(codes.DIGITS) == set("23456789")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="#?*AB9-", min_size=1, max_size=20).filter(lambda p: p[0] != "-"))
def test_generated_codes_follow_their_pattern(pattern: str) -> None:
    if not any(c in "#?*" for c in pattern):
        with pytest.raises(codes.PatternError):
            codes.check_pattern(pattern)
        return
    pat = codes.check_pattern(pattern)
    gen = codes.Generator(pat)
    for code in (gen.one() for _ in range(20)):
        assert len(code) == len(pat)
        for p, c in zip(pat, code, strict=True):
            if p == "#":
                assert c in codes.DIGITS
            elif p == "?":
                assert c in codes.LETTERS
            elif p == "*":
                assert c in codes.ALPHANUMERIC
            else:
                assert c == p


def test_space_and_sparseness_rule() -> None:
    assert codes.space("KOPI-####-????") == 8**4 * 22**4
    codes.check_room("****-****", 1000)  # 30^8 = 6.6e11
    with pytest.raises(codes.PatternError, match="at least 1,000 times"):
        codes.check_room("###", 1)  # 512 < 1000


def test_every_slot_value_is_reachable() -> None:
    gen = codes.Generator("*")
    seen = {gen.one() for _ in range(3000)}
    assert seen == set(codes.ALPHANUMERIC)
    # The bulk draw: every character about equally often (expected 1,000 each, sd ~31).
    tally = Counter(gen.code(n) for n in gen._numbers(30_000))
    assert set(tally) == set(codes.ALPHANUMERIC)
    assert all(800 < k < 1200 for k in tally.values())


def test_generate_5000_unique_codes(db: Database, tenant: TenantFixture) -> None:
    cid = make_campaign(db, tenant, code_pattern="KOPI-####-????")
    made = tx(
        db,
        lambda s: service.generate_codes(s, _tenant(s, tenant), cid, count=5000)[0].count,
    )
    assert made == 5000
    rows = list(tx(db, lambda s: [r["code"] for r in service.export_rows(s, cid)]))
    assert len(rows) == len(set(rows)) == 5000
    rx = re.compile(r"^KOPI-[2-9]{4}-[A-HJKMNP-TV-Z]{4}$")
    assert all(rx.fullmatch(c) for c in rows)
    # Another 5000 for the same campaign: none of the first ones again.
    more = generate(db, tenant, cid, 1000)
    assert not set(more) & set(rows)


def test_collision_with_an_existing_code_is_drawn_again(
    db: Database, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = make_campaign(db, tenant, code_pattern="******")
    first = generate(db, tenant, cid, 1)[0]
    # The draw gives the existing code first, then fresh ones.
    draws = iter([_index("******", first), 0, 1, 2])
    monkeypatch.setattr(
        codes.Generator, "_numbers", lambda self, count: [next(draws) for _ in range(count)]
    )
    second = generate(db, tenant, cid, 1)
    assert second == ["AAAAAA"]


def _index(pattern: str, code: str) -> int:
    n = 0
    for p, c in zip(pattern, code, strict=True):
        if p in codes.SLOTS:
            alphabet = codes.SLOTS[p]
            n = n * len(alphabet) + alphabet.index(c)
    return n


def _tenant(s: Any, t: TenantFixture) -> Any:
    from tests.coupons.conftest import tenant_of

    return tenant_of(s, t)


def test_pattern_too_small_is_refused_with_the_rule(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant)
    before = counts(db)
    r = client.post(
        f"/v1/coupon-campaigns/{cid}/codes/generate",
        json={"count": 100, "pattern": "KOPI-####"},
        headers=tenant.headers,
    )
    assert r.status_code == 422
    p = r.json()
    assert p["code"] == "pattern_too_small"
    assert p["space"] == 4096
    assert "1,000 times" in p["detail"]
    assert counts(db) == before
    bad = client.post(
        f"/v1/coupon-campaigns/{cid}/codes/generate",
        json={"count": 1, "pattern": "KOPI!"},
        headers=tenant.headers,
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_pattern"
    none = client.post(
        f"/v1/coupon-campaigns/{cid}/codes/generate",
        json={"count": 1, "pattern": "KOPI"},
        headers=tenant.headers,
    )
    assert none.json()["code"] == "invalid_pattern"


def test_generate_is_idempotent_with_a_key(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant)
    h = {**tenant.headers, "Idempotency-Key": "gen-1"}
    url = f"/v1/coupon-campaigns/{cid}/codes/generate"
    first = client.post(url, json={"count": 20, "pattern": "SALE-****-****"}, headers=h)
    assert first.status_code == 201, first.text
    assert len(first.json()["codes"]) == 20
    again = client.post(url, json={"count": 20, "pattern": "SALE-****-****"}, headers=h)
    assert again.status_code == 200
    assert again.json()["codes"] == first.json()["codes"]
    assert counts(db)["coupons"] == 20
    other = client.post(url, json={"count": 21, "pattern": "SALE-****-****"}, headers=h)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


def test_list_filter_get_and_export(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant)
    made = generate(db, tenant, cid, 7)
    client.post(f"/v1/coupons/{made[0]}/cancel", json={"reason": "x"}, headers=tenant.headers)
    url = f"/v1/coupon-campaigns/{cid}/codes"
    page1 = client.get(f"{url}?limit=4", headers=tenant.headers).json()
    page2 = client.get(
        f"{url}?limit=4&cursor={page1['next_cursor']}", headers=tenant.headers
    ).json()
    assert len(page1["data"]) == 4
    assert len(page2["data"]) == 3
    assert page2["next_cursor"] is None
    assert {c["code"] for c in page1["data"] + page2["data"]} == set(made)
    cancelled = client.get(f"{url}?status=cancelled", headers=tenant.headers).json()["data"]
    assert [c["code"] for c in cancelled] == [made[0]]
    one = client.get(f"/v1/coupons/{cancelled[0]['id']}", headers=tenant.headers).json()
    assert one["code"] == made[0]
    assert one["redemptions"] == []
    csv_text = client.get(f"{url}/export", headers=tenant.headers).text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("code,status,")
    assert len(lines) == 8


def _import(client: TestClient, t: TenantFixture, cid: Any, text: str, **headers: str) -> Any:
    return client.post(
        f"/v1/coupon-campaigns/{cid}/codes/import",
        content=text.encode(),
        headers={**t.headers, "Content-Type": "text/csv", **headers},
    )


def test_csv_import_good(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    member = new_member(db, tenant, "CUST-1")
    cid = make_campaign(db, tenant)
    text = (
        "code,member_external_id,expires_at\n"
        "gojek-ab12,,2026-12-31\n"
        "GOJEK-AB13,CUST-1,2026-12-31T10:00:00+07:00\n"
        "GOJEK-AB14,,\n"
    )
    r = _import(client, tenant, cid, text)
    assert r.status_code == 201, r.text
    assert r.json()["count"] == 3
    assert sorted(r.json()["codes"]) == ["GOJEK-AB12", "GOJEK-AB13", "GOJEK-AB14"]
    got = client.get("/v1/coupons/gojek-ab12", headers=tenant.headers).json()
    # A date alone: the end of that day in Jakarta (UTC+7).
    assert got["expires_at"].startswith("2026-12-31T17:00:00")
    bound = client.get("/v1/coupons/GOJEK-AB13", headers=tenant.headers).json()
    assert bound["member_id"] == str(member)
    assert bound["expires_at"].startswith("2026-12-31T03:00:00")


def test_csv_import_bad_lines_are_reported_and_nothing_written(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant)
    _import(client, tenant, cid, "code\nEXISTING-1\n")
    before = counts(db)
    text = (
        "code,member_external_id,expires_at\n"  # line 1
        "GOOD-0001,,\n"  # 2
        "GOOD-0001,,\n"  # 3 duplicate of 2
        "a!,,\n"  # 4 bad code
        "EXISTING-1,,\n"  # 5 exists
        "GOOD-0002,NOBODY,\n"  # 6 unknown member
        "GOOD-0003,,31/12/2026\n"  # 7 bad date
        ",,\n"  # 8 empty
    )
    r = _import(client, tenant, cid, text)
    assert r.status_code == 422
    p = r.json()
    assert p["code"] == "csv_invalid"
    by_line = {e["line"]: e["error"] for e in p["errors"]}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8]
    assert "duplicate of line 2" in by_line[3]
    assert "already exists" in by_line[5]
    assert "NOBODY" in by_line[6]
    assert "ISO 8601" in by_line[7]
    assert p["error_count"] == 6
    assert counts(db) == before
    no_header = _import(client, tenant, cid, "GOOD-9999\n")
    assert no_header.status_code == 422
    assert counts(db) == before


def test_member_bound_campaign_needs_members_in_the_csv(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant, member_bound=True)
    r = _import(client, tenant, cid, "code\nBOUND-0001\n")
    assert r.status_code == 422
    assert r.json()["errors"][0]["line"] == 2


def test_a_date_alone_as_expiry_means_the_end_of_that_local_day(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """Generated and imported codes read ``expires_at: "2026-12-31"`` the same way: valid
    through 31 December in the tenant's zone (Asia/Jakarta, UTC+7)."""
    cid = make_campaign(db, tenant)
    r = client.post(
        f"/v1/coupon-campaigns/{cid}/codes/generate",
        json={"count": 1, "expires_at": "2026-12-31"},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] == "2026-12-31T17:00:00Z"
    r = client.post(
        f"/v1/coupon-campaigns/{cid}/codes/generate",
        json={"count": 1, "expires_at": "2026-12-31T12:00:00"},
        headers=tenant.headers,
    )
    assert r.json()["expires_at"] == "2026-12-31T05:00:00Z"
    imported = tx(
        db,
        lambda s: service._parse_expiry("2026-12-31", "Asia/Jakarta").isoformat(),
    )
    assert imported == "2026-12-31T17:00:00+00:00"
