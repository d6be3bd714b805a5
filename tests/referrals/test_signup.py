"""Codes, share texts, sign-up with a code, and every fraud guard: each refusal is a clear
answer with a stable code, and nothing is written."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import select, update

from setia.audit.models import AuditRecord
from setia.core.time import utcnow
from setia.members.models import Member
from setia.referrals import service
from tests.conftest import make_tenant
from tests.referrals.conftest import SETTINGS, World, assert_problem


def test_settings_defaults_then_change(world: World) -> None:
    body = world.client.get("/v1/referrals/settings", headers=world.h).json()
    assert body["enabled"] is True
    assert body["min_amount"] == "50000"
    assert body["currency"] == "IDR"
    assert body["return_window_days"] == 7
    assert body["disposable_domains"] > 150
    changed = world.settings(cap_per_month=3, disposable_add=["Spam.Example"])
    assert changed["cap_per_month"] == 3
    assert changed["referrer_points"] == 500  # untouched fields keep their value
    assert changed["disposable_add"] == ["spam.example"]
    assert changed["disposable_domains"] == body["disposable_domains"] + 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"share_url": "https://kopi.example/r/"}, "share_url"),
        ({"share_texts": {"id": "Kode {kode}"}}, "share_texts.id"),
        ({"share_texts": {"id": "Kode {code:>99999999} {link}"}}, "share_texts.id"),
        ({"share_texts": {"en": "Code {code!r} {link}"}}, "share_texts.en"),
        ({"share_texts": {"en": "Code {code.__class__} {link}"}}, "share_texts.en"),
        ({"share_url": "https://kopi.example/r/{code[0]}"}, "share_url"),
        ({"share_url": "https://kopi.example/r/{code"}, "share_url"),
        ({"share_texts": {"ms": "Kod {code}"}}, "share_texts"),
        ({"referrer_campaign_id": str(uuid.uuid4())}, "referrer_campaign_id"),
        ({"min_amount": "-5"}, "min_amount"),
    ],
)
def test_bad_settings_are_refused(world: World, changes: dict[str, Any], field: str) -> None:
    before = world.client.get("/v1/referrals/settings", headers=world.h).json()
    r = world.client.put("/v1/referrals/settings", json=changes, headers=world.h)
    assert r.status_code == 422, r.text
    assert field in r.text
    assert world.client.get("/v1/referrals/settings", headers=world.h).json() == before


def test_settings_need_an_admin_key(world: World, client: Any) -> None:
    r = world.client.put(
        "/v1/referrals/settings",
        json={"enabled": False},
        headers={"Authorization": "Bearer nope"},
    )
    assert r.status_code == 401


def test_a_share_text_stored_before_the_check_is_filled_safely(world: World) -> None:
    """A text saved before specs were refused ({code:>99999999} would build 100 MB) has its
    plain placeholders filled and the rest left as written."""
    from sqlalchemy import update as sql_update

    from setia.referrals.models import ReferralSettings

    siti = world.member("Siti", locale="id")
    with world.db.session() as s:
        s.execute(
            sql_update(ReferralSettings).values(
                share_texts={"id": "Kode {code} {code:>99999999} {name!r} {link"}
            )
        )
        s.commit()
    r = world.client.get(f"/v1/members/{siti}/referral", headers=world.h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["share_texts"]["id"] == "Kode {code} {code:>99999999} {name!r} {link"
    with world.db.session() as s:
        s.execute(
            sql_update(ReferralSettings).values(
                share_texts={"id": "Kode {code} untuk {name}: {code:>99999999} {name!r}"}
            )
        )
        s.commit()
    text = world.client.get(f"/v1/members/{siti}/referral", headers=world.h).json()["share_texts"]
    assert text["id"] == f"Kode {body['code']} untuk Siti: {{code:>99999999}} {{name!r}}"


def test_personal_code_link_and_share_texts(world: World) -> None:
    siti = world.member("Siti", locale="ms")
    r = world.client.get(f"/v1/members/{siti}/referral", headers=world.h)
    assert r.status_code == 200, r.text
    body = r.json()
    code = body["code"]
    assert len(code) == service.CODE_LENGTH
    assert set(code) <= set(service.ALPHABET)
    assert not set(code) & set("01ILO")
    assert body["link"] == f"https://kopi.example/r/{code}"
    assert set(body["share_texts"]) == {"id", "ms", "en"}
    assert body["locale"] == "ms"
    assert body["share_text"] == body["share_texts"]["ms"]
    assert code in body["share_text"]
    assert body["link"] in body["share_text"]
    assert "Jom" in body["share_text"]
    assert unquote(body["whatsapp_url"].split("text=", 1)[1]) == body["share_text"]
    # The same code every time; another language on request.
    again = world.client.get(
        f"/v1/members/{siti}/referral", params={"locale": "en"}, headers=world.h
    ).json()
    assert again["code"] == code
    assert again["share_text"].startswith("Join")
    # Codes are unique per tenant.
    codes = {world.code(world.member()) for _ in range(20)} | {code}
    assert len(codes) == 21


def test_shares_are_counted(world: World) -> None:
    siti = world.member("Siti")
    for _ in range(3):
        r = world.client.post(
            f"/v1/members/{siti}/referral/shares", json={"channel": "whatsapp"}, headers=world.h
        )
        assert r.status_code == 201, r.text
    assert r.json()["shares"] == 3
    body = world.client.get(f"/v1/members/{siti}/referral", headers=world.h).json()
    assert body["counts"]["shares"] == 3


def test_signup_with_a_code_links_the_referee(world: World) -> None:
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi")
    assert referral["referrer_id"] == str(siti)
    assert referral["referee_id"] == str(budi)
    assert referral["status"] == "pending"
    assert referral["source"] == "signup"
    assert [d["to_status"] for d in referral["decisions"]] == ["pending"]
    assert world.topics() == ["referral.created"]
    mine = world.client.get(f"/v1/members/{budi}/referral", headers=world.h).json()
    assert mine["referred_by"] == str(siti)


def test_code_is_case_and_dash_insensitive(world: World) -> None:
    siti = world.member("Siti")
    code = world.code(siti)
    typed = f"{code[:3].lower()}-{code[3:]}"
    budi = world.member("Budi", referral_code=typed)
    assert world.referral_of(budi)["code"] == code


def test_explicit_attach_is_idempotent(world: World) -> None:
    siti = world.member("Siti")
    budi = world.member("Budi")
    body = {"member_id": str(budi), "code": world.code(siti), "device_id": "dev-budi"}
    first = world.client.post("/v1/referrals", json=body, headers=world.h)
    assert first.status_code == 201, first.text
    before = world.counts()
    again = world.client.post("/v1/referrals", json=body, headers=world.h)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert world.counts() == before


def _refused(world: World, status: int, code: str, fn: Any) -> dict[str, Any]:
    before = world.counts()
    r = fn()
    body = assert_problem(r, status, code)
    assert world.counts() == before, "a refused sign-up wrote something"
    return body


def test_unknown_code_refuses_the_signup(world: World) -> None:
    body = {"external_id": "X1", "referral_code": "ZZZZZZZ"}
    problem = _refused(
        world,
        404,
        "referral_code_not_found",
        lambda: world.client.post("/v1/members", json=body, headers=world.h),
    )
    assert problem["field"] == "referral_code"  # each problem names its request's field
    budi = world.member("Budi")
    problem = _refused(
        world,
        404,
        "referral_code_not_found",
        lambda: world.client.post(
            "/v1/referrals", json={"member_id": str(budi), "code": "ZZZZZZZ"}, headers=world.h
        ),
    )
    assert problem["field"] == "code"


def test_code_of_another_tenant_is_not_found(world: World, db: Any) -> None:
    other = make_tenant(db, name="Kopi Lain")
    r = world.client.post("/v1/members", json={"external_id": "O1"}, headers=other.headers)
    theirs = r.json()["id"]
    code = world.client.get(f"/v1/members/{theirs}/referral", headers=other.headers).json()["code"]
    _refused(
        world,
        404,
        "referral_code_not_found",
        lambda: world.client.post(
            "/v1/members", json={"external_id": "X2", "referral_code": code}, headers=world.h
        ),
    )


def test_self_referral_by_member(world: World) -> None:
    siti = world.member("Siti")
    code = world.code(siti)
    body = _refused(
        world,
        409,
        "self_referral",
        lambda: world.client.post(
            "/v1/referrals",
            json={"member_id": str(siti), "code": code},
            headers=world.h,
        ),
    )
    assert body["match"] == "member"


def test_self_referral_by_email_alias(world: World) -> None:
    siti = world.member("Siti", email="siti.rahayu@gmail.com")
    code = world.code(siti)
    body = _refused(
        world,
        409,
        "self_referral",
        lambda: world.client.post(
            "/v1/members",
            json={"external_id": "X3", "email": "SitiRahayu+2@gmail.com", "referral_code": code},
            headers=world.h,
        ),
    )
    assert body["match"] == "email"


def test_self_referral_by_phone(world: World) -> None:
    siti = world.member("Siti", phone="0812-3456-7890")
    code = world.code(siti)
    # The same number, in another notation, on a new member whose old record was erased.
    with world.db.session() as s:
        s.execute(update(Member).where(Member.id == siti).values(phone="+6281234567890"))
    budi = world.member("Budi")
    with world.db.session() as s:
        s.execute(update(Member).where(Member.id == budi).values(phone="081234567890"))
    body = _refused(
        world,
        409,
        "self_referral",
        lambda: world.client.post(
            "/v1/referrals", json={"member_id": str(budi), "code": code}, headers=world.h
        ),
    )
    assert body["match"] == "phone"


def test_self_referral_by_device(world: World) -> None:
    siti = world.member("Siti")
    world.client.post(
        f"/v1/members/{siti}/referral/shares",
        json={"channel": "whatsapp", "device_id": "phone-siti"},
        headers=world.h,
    )
    code = world.code(siti)
    body = _refused(
        world,
        409,
        "self_referral",
        lambda: world.client.post(
            "/v1/members",
            json={"external_id": "X4", "referral_code": code, "device_id": "phone-siti"},
            headers=world.h,
        ),
    )
    assert body["match"] == "device"


def test_one_device_signs_up_once_per_code(world: World) -> None:
    siti = world.member("Siti")
    code = world.code(siti)
    world.member("Budi", referral_code=code, device_id="farm-1")
    _refused(
        world,
        409,
        "referral_device_reused",
        lambda: world.client.post(
            "/v1/members",
            json={"external_id": "X5", "referral_code": code, "device_id": "farm-1"},
            headers=world.h,
        ),
    )


@pytest.mark.parametrize(
    "email", ["budi@mailinator.com", "budi@x.yopmail.com", "budi@spam.example"]
)
def test_disposable_email_is_refused(world: World, email: str) -> None:
    world.settings(disposable_add=["spam.example"])
    siti = world.member("Siti")
    code = world.code(siti)
    body = _refused(
        world,
        422,
        "disposable_email",
        lambda: world.client.post(
            "/v1/members",
            json={"external_id": "X6", "email": email, "referral_code": code},
            headers=world.h,
        ),
    )
    assert body["field"] == "email"


def test_a_removed_domain_is_allowed(world: World) -> None:
    world.settings(disposable_remove=["mailinator.com"])
    siti = world.member("Siti")
    budi = world.member("Budi", email="budi@mailinator.com", referral_code=world.code(siti))
    assert world.referral_of(budi)["status"] == "pending"


def test_already_referred_with_another_code(world: World) -> None:
    siti, ani = world.member("Siti"), world.member("Ani")
    budi, _ = world.referred(siti, "Budi")
    ani_code = world.code(ani)
    body = _refused(
        world,
        409,
        "already_referred",
        lambda: world.client.post(
            "/v1/referrals",
            json={"member_id": str(budi), "code": ani_code},
            headers=world.h,
        ),
    )
    assert body["referral_id"]


def test_a_customer_who_already_bought_is_not_new(world: World) -> None:
    siti = world.member("Siti")
    budi = world.member("Budi")
    code = world.code(siti)
    world.buy(budi, "75000")
    _refused(
        world,
        409,
        "not_a_new_customer",
        lambda: world.client.post(
            "/v1/referrals", json={"member_id": str(budi), "code": code}, headers=world.h
        ),
    )


def test_attach_too_late(world: World) -> None:
    siti = world.member("Siti")
    budi = world.member("Budi")
    code = world.code(siti)
    with world.db.session() as s:
        s.execute(
            update(Member).where(Member.id == budi).values(created_at=utcnow() - timedelta(days=30))
        )
    _refused(
        world,
        409,
        "referral_attach_too_late",
        lambda: world.client.post(
            "/v1/referrals", json={"member_id": str(budi), "code": code}, headers=world.h
        ),
    )


def test_code_of_an_erased_or_merged_member(world: World) -> None:
    siti, ani, other = world.member("Siti"), world.member("Ani"), world.member("Other")
    siti_code, ani_code = world.code(siti), world.code(ani)
    r = world.client.post(
        f"/v1/members/{siti}/erase",
        json={"reason": "data subject request", "confirm": True},
        headers=world.h,
    )
    assert r.status_code == 200, r.text
    r = world.client.post(
        f"/v1/members/{other}/merge",
        json={"source_member_id": str(ani), "reason": "duplicate"},
        headers=world.h,
    )
    assert r.status_code == 200, r.text
    for code in (siti_code, ani_code):
        _refused(
            world,
            409,
            "referral_code_inactive",
            lambda code=code: world.client.post(
                "/v1/members",
                json={"external_id": f"X-{code}", "referral_code": code},
                headers=world.h,
            ),
        )
    # An erased member gets no code either.
    assert_problem(
        world.client.get(f"/v1/members/{siti}/referral", headers=world.h), 409, "member_not_active"
    )


def test_disabled_program_refuses_codes(world: World) -> None:
    siti = world.member("Siti")
    code = world.code(siti)
    world.settings(enabled=False)
    _refused(
        world,
        409,
        "referrals_disabled",
        lambda: world.client.post(
            "/v1/members", json={"external_id": "X7", "referral_code": code}, headers=world.h
        ),
    )


def test_missing_fields_are_422(world: World) -> None:
    before = world.counts()
    r = world.client.post("/v1/referrals", json={"code": "ABCDEFG"}, headers=world.h)
    assert r.status_code == 422
    r = world.client.post(
        "/v1/referrals", json={"member_id": str(uuid.uuid4()), "code": ""}, headers=world.h
    )
    assert r.status_code == 422
    assert_problem(
        world.client.post(
            "/v1/referrals",
            json={"member_id": str(uuid.uuid4()), "code": "ABCDEFG"},
            headers=world.h,
        ),
        404,
        "member_not_found",
    )
    assert world.counts() == before


# --------------------------------------------------------------------------- velocity & review


def test_zero_days_to_attach_means_only_at_sign_up(world: World) -> None:
    world.settings(attach_within_days=0)
    siti = world.member("Siti")
    _budi, referral = world.referred(siti, "Budi")  # the code given with the sign-up
    assert referral["status"] == "pending"
    ani = world.member("Ani")  # signed up a moment ago, without a code
    _refused(
        world,
        409,
        "referral_attach_too_late",
        lambda: world.client.post(
            "/v1/referrals", json={"member_id": str(ani), "code": world.code(siti)}, headers=world.h
        ),
    )


def test_a_later_burst_keeps_what_a_person_approved(world: World) -> None:
    world.settings(velocity_count=3)
    siti = world.member("Siti")
    first = [world.referred(siti)[1] for _ in range(3)]
    assert {world.referral(r["id"])["status"] for r in first} == {"held"}
    for r in first:
        ok = world.client.post(
            f"/v1/referrals/{r['id']}/approve", json={"reason": "a family"}, headers=world.h
        )
        assert ok.status_code == 200, ok.text
    _late, fourth = world.referred(siti)
    assert fourth["status"] == "held"
    after = [world.referral(r["id"]) for r in first]
    assert {(r["status"], r["decision_reason"]) for r in after} == {("pending", "a family")}


def test_a_burst_is_held_not_refused(world: World) -> None:
    siti = world.member("Siti")
    referees = [world.referred(siti)[0] for _ in range(6)]
    statuses = [world.referral_of(m)["status"] for m in referees]
    # The 5th sign-up within 10 minutes trips the limit: the whole burst waits for a person.
    assert statuses == ["held"] * 6
    held = world.client.get("/v1/referrals", params={"status": "held"}, headers=world.h).json()[
        "data"
    ]
    assert len(held) == 6
    assert {h["held_reason"] for h in held} == {"velocity"}
    assert world.topics().count("referral.held") == 6


def test_review_approve_and_reject_are_recorded(world: World) -> None:
    world.settings(review_required=True)
    siti = world.member("Siti")
    _budi, r1 = world.referred(siti, "Budi")
    _ani, r2 = world.referred(siti, "Ani")
    assert (r1["status"], r1["held_reason"]) == ("held", "review_required")
    ok = world.client.post(
        f"/v1/referrals/{r1['id']}/approve", json={"reason": "known customers"}, headers=world.h
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["status"] == "pending"
    assert body["decision_reason"] == "known customers"
    assert body["decided_by"].startswith("api-key:")
    assert [d["to_status"] for d in body["decisions"]] == ["held", "pending"]
    no = world.client.post(
        f"/v1/referrals/{r2['id']}/reject", json={"reason": "same household"}, headers=world.h
    )
    assert no.json()["status"] == "rejected"
    # The same decision again changes nothing; the other one is refused.
    before = world.counts()
    again = world.client.post(
        f"/v1/referrals/{r2['id']}/reject", json={"reason": "same household"}, headers=world.h
    )
    assert again.status_code == 200
    assert world.counts() == before
    assert_problem(
        world.client.post(
            f"/v1/referrals/{r2['id']}/approve",
            json={"reason": "changed my mind"},
            headers=world.h,
        ),
        409,
        "referral_not_held",
    )
    assert world.counts() == before
    with world.db.session() as s:
        audited = {
            (a.action, a.subject_id, a.details["reason"])
            for a in s.execute(
                select(AuditRecord).where(AuditRecord.subject_type == "referral")
            ).scalars()
        }
    assert audited == {
        ("referral.approved", r1["id"], "known customers"),
        ("referral.rejected", r2["id"], "same household"),
    }
    assert "referral.approved" in world.topics()
    assert "referral.rejected" in world.topics()
    assert_problem(
        world.client.post(
            f"/v1/referrals/{uuid.uuid4()}/approve", json={"reason": "x" * 5}, headers=world.h
        ),
        404,
        "referral_not_found",
    )


def test_the_member_record_shows_the_referral_count(world: World) -> None:
    siti = world.member("Siti")
    r = world.client.get(f"/v1/members/{siti}", headers=world.h)
    assert r.json()["referral_count"] == 0
    assert SETTINGS["enabled"]
