"""HTTP API of coupons: campaigns and their codes (admin), and the checkout endpoints
(validate, redeem, void) for tills and web shops (pos scope)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import StreamingResponse

from setia.core.api import (
    AdminCaller,
    Cursor,
    IdempotencyKey,
    Limit,
    Page,
    PosCaller,
    ReadCaller,
    SessionDep,
    answered,
    decode_cursor,
    encode_cursor,
    problems,
    write,
)
from setia.core.money import to_str
from setia.core.time import as_utc, zone
from setia.coupons import codes, service
from setia.coupons.discount import LOCALES, Outcome, effective_expiry, message
from setia.coupons.models import Coupon, CouponBatch, CouponCampaign, CouponRedemption
from setia.coupons.schemas import (
    BatchOut,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CampaignRef,
    CancelIn,
    CodeOut,
    GenerateIn,
    RedeemIn,
    RedemptionOut,
    ValidateIn,
    ValidationOut,
    VoidIn,
)
from setia.ledger.service import request_hash
from setia.members.models import Member
from setia.tenants.models import Tenant

router = APIRouter(prefix="/v1", tags=["coupons"])

Locale = Annotated[
    Literal["id", "ms", "en"] | None,
    Query(description="Language of `reason`; default: the member's, else id"),
]
CSV_EXPORT_FIELDS = [
    "code",
    "status",
    "member_id",
    "member_external_id",
    "uses",
    "max_uses",
    "expires_at",
    "is_public",
    "created_at",
]


def campaign_out(c: CouponCampaign, tenant: Tenant, created: bool = False) -> CampaignOut:
    tz = zone(tenant.timezone)
    return CampaignOut(
        id=c.id,
        program_id=c.program_id,
        code=c.code,
        names=c.names,
        descriptions=c.descriptions,
        currency=c.currency,
        **service.campaign_definition(c),
        uses_per_code=c.uses_per_code,
        member_bound=c.member_bound,
        code_pattern=c.code_pattern,
        public_code=c.public_code,
        status=c.status,
        uses=c.uses,
        timezone=tenant.timezone,
        valid_from_local=(
            None if c.valid_from is None else as_utc(c.valid_from).astimezone(tz).isoformat()
        ),
        valid_until_local=(
            None if c.valid_until is None else as_utc(c.valid_until).astimezone(tz).isoformat()
        ),
        created_at=c.created_at,
        updated_at=c.updated_at,
        created=created,
    )


def redemption_out(r: CouponRedemption, code: str, created: bool = False) -> RedemptionOut:
    return RedemptionOut(
        id=r.id,
        coupon_id=r.coupon_id,
        code=code,
        campaign_id=r.campaign_id,
        member_id=r.member_id,
        order_id=r.order_id,
        discount=to_str(r.discount, r.currency),
        currency=r.currency,
        status=r.status,
        created_at=r.created_at,
        voided_at=r.voided_at,
        void_reason=r.void_reason,
        created=created,
    )


def code_out(
    c: Coupon, campaign: CouponCampaign, redemptions: list[CouponRedemption] | None = None
) -> CodeOut:
    return CodeOut(
        id=c.id,
        code=c.code,
        campaign_id=c.campaign_id,
        batch_id=c.batch_id,
        member_id=c.member_id,
        is_public=c.is_public,
        status=c.status,
        uses=c.uses,
        max_uses=c.max_uses,
        expires_at=c.expires_at,
        effective_expires_at=effective_expiry(c, campaign),
        source_type=c.source_type,
        source_id=c.source_id,
        created_at=c.created_at,
        cancelled_at=c.cancelled_at,
        cancel_reason=c.cancel_reason,
        redemptions=(
            None if redemptions is None else [redemption_out(r, c.code) for r in redemptions]
        ),
    )


def batch_out(session: SessionDep, b: CouponBatch, created: bool) -> BatchOut:
    return BatchOut(
        id=b.id,
        campaign_id=b.campaign_id,
        kind=b.kind,
        count=b.count,
        pattern=b.pattern,
        expires_at=b.expires_at,
        created_at=b.created_at,
        created=created,
        codes=service.batch_codes(session, b.id, b.count) if b.count <= 1000 else None,
    )


def _name(names: dict[str, str], locale: str) -> str:
    return names.get(locale) or names.get("id") or names.get("en") or next(iter(names.values()))


# --------------------------------------------------------------------------- campaigns


@router.post(
    "/coupon-campaigns",
    response_model=CampaignOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(CampaignOut, 200)},
)
def create_campaign(
    body: CampaignIn,
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> CampaignOut:
    """Create a coupon campaign: its discount, conditions and (optionally) a public code
    anyone can type, like `HARBOLNAS`. Times without an offset are the tenant's local time.
    The campaign `code` is unique per tenant (`409 campaign_code_taken`); a public code
    must not be any other code of the tenant (`409 coupon_code_taken`). With an
    `Idempotency-Key`, a retry answers `200` with the first result."""
    digest = request_hash(body.model_dump(mode="json")) if idempotency_key else None

    def run() -> tuple[CouponCampaign, bool]:
        return service.create_campaign(
            session, caller.tenant, body, idempotency_key=idempotency_key, request_hash=digest
        )

    c, created = write(session, run)
    response.status_code = 201 if created else 200
    return campaign_out(c, caller.tenant, created)


@router.get("/coupon-campaigns", response_model=Page[CampaignOut], responses=problems(403))
def list_campaigns(
    session: SessionDep,
    caller: ReadCaller,
    status: Annotated[str | None, Query(pattern="^(active|paused|archived)$")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[CampaignOut]:
    """Coupon campaigns, oldest first, optionally in one status."""
    rows = service.list_campaigns(
        session, caller.tenant.id, status=status, after=decode_cursor(cursor), limit=limit
    )
    return Page(
        data=[campaign_out(c, caller.tenant) for c in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )


@router.get(
    "/coupon-campaigns/{campaign_id}", response_model=CampaignOut, responses=problems(403, 404)
)
def get_campaign(campaign_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> CampaignOut:
    """One campaign, with `uses` (active redemptions of all its codes)."""
    return campaign_out(service.get_campaign(session, caller.tenant.id, campaign_id), caller.tenant)


@router.patch(
    "/coupon-campaigns/{campaign_id}",
    response_model=CampaignOut,
    responses=problems(403, 404, 409),
)
def update_campaign(
    campaign_id: uuid.UUID, body: CampaignPatch, session: SessionDep, caller: AdminCaller
) -> CampaignOut:
    """Change texts, status (`active`, `paused`, `archived`), conditions, the cap, the
    pattern or `uses_per_code` (for codes made from now on). An archived campaign keeps its
    conditions (`409 campaign_archived`); only its texts can change."""
    c = write(session, lambda: service.update_campaign(session, caller.tenant, campaign_id, body))
    return campaign_out(c, caller.tenant)


# --------------------------------------------------------------------------- codes


@router.post(
    "/coupon-campaigns/{campaign_id}/codes/generate",
    response_model=BatchOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(BatchOut, 200)},
)
def generate_codes(
    campaign_id: uuid.UUID,
    body: GenerateIn,
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> BatchOut:
    """Make `count` (up to 100,000) unique random codes from a pattern: `#` a digit, `?` a
    letter, `*` either; other characters are kept. The alphabet leaves out 0, 1, I, L, O
    and U. The pattern must make at least 1,000 times as many codes as the campaign will
    have (`422 pattern_too_small`). Codes are listed in the answer when there are at most
    1,000; else list or export them. With an `Idempotency-Key` a retry answers `200` with
    the same batch."""
    digest = (
        request_hash({"campaign": str(campaign_id), **body.model_dump(mode="json")})
        if idempotency_key
        else None
    )

    def run() -> tuple[CouponBatch, bool]:
        return service.generate_codes(
            session,
            caller.tenant,
            campaign_id,
            count=body.count,
            pattern=body.pattern,
            expires_at=body.expires_at,
            idempotency_key=idempotency_key,
            request_hash=digest,
        )

    batch, created = write(session, run)
    response.status_code = 201 if created else 200
    return batch_out(session, batch, created)


@router.post(
    "/coupon-campaigns/{campaign_id}/codes/import",
    response_model=BatchOut,
    status_code=201,
    responses={**problems(403, 404, 409, 413), **answered(BatchOut, 200)},
)
def import_codes(
    campaign_id: uuid.UUID,
    body: Annotated[
        str,
        Body(
            media_type="text/csv",
            examples=["code,member_external_id,expires_at\nGOJEK-AB12,,2026-12-31\n"],
        ),
    ],
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> BatchOut:
    """Import a pool of codes (`Content-Type: text/csv`): a header line with `code` and
    optionally `member_external_id` and `expires_at` (ISO 8601; without an offset the
    tenant's local time; a date alone: the end of that day). Codes are case-insensitive
    and stored in upper case. Any bad line (bad or duplicate code, a code that exists, an
    unknown member, a bad date) makes the whole import fail with `422 csv_invalid` and
    `errors: [{line, error}]`; nothing is written. With an `Idempotency-Key`, a retry of the
    same CSV answers `200` with the first batch; another CSV is `409 idempotency_key_reused`."""
    digest = request_hash({"campaign": str(campaign_id), "csv": body}) if idempotency_key else None

    def run() -> tuple[CouponBatch, bool]:
        return service.import_codes(
            session,
            caller.tenant,
            campaign_id,
            body,
            idempotency_key=idempotency_key,
            request_hash=digest,
        )

    batch, created = write(session, run)
    response.status_code = 201 if created else 200
    return batch_out(session, batch, created)


@router.get(
    "/coupon-campaigns/{campaign_id}/codes",
    response_model=Page[CodeOut],
    responses=problems(403, 404),
)
def list_codes(
    campaign_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    status: Annotated[str | None, Query(pattern="^(active|cancelled)$")] = None,
    member_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[CodeOut]:
    """The campaign's codes, oldest first; filter by status, member or batch."""
    campaign = service.get_campaign(session, caller.tenant.id, campaign_id)
    rows = service.list_codes(
        session,
        caller.tenant.id,
        campaign_id,
        status=status,
        member_id=member_id,
        batch_id=batch_id,
        after=decode_cursor(cursor),
        limit=limit,
    )
    return Page(
        data=[code_out(c, campaign) for c in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )


@router.get(
    "/coupon-campaigns/{campaign_id}/codes/export",
    responses={
        **problems(403, 404),
        200: {"content": {"text/csv": {}}, "description": "Every code, as CSV"},
    },
)
def export_codes(
    campaign_id: uuid.UUID, session: SessionDep, caller: ReadCaller
) -> StreamingResponse:
    """Every code of the campaign as CSV (code, status, member, uses, expiry), streamed."""
    campaign = service.get_campaign(session, caller.tenant.id, campaign_id)

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for i, row in enumerate(service.export_rows(session, campaign.id), 1):
            writer.writerow(row)
            if i % 1000 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{campaign.code}-codes.csv"'},
    )


@router.get("/coupons/{code}", response_model=CodeOut, responses=problems(403, 404))
def get_code(code: str, session: SessionDep, caller: ReadCaller) -> CodeOut:
    """One code (by the code, case-insensitive, or its id) with all its redemptions."""
    c = service.find_coupon(session, caller.tenant.id, code)
    campaign = service.get_campaign(session, caller.tenant.id, c.campaign_id)
    return code_out(c, campaign, service.redemptions_of(session, c.id))


@router.post("/coupons/{code}/cancel", response_model=CodeOut, responses=problems(403, 404, 409))
def cancel_code(code: str, body: CancelIn, session: SessionDep, caller: AdminCaller) -> CodeOut:
    """Cancel a code that is not in use on an order (`409 coupon_used` if it is: void that
    order's redemption first). Cancelling a cancelled code changes nothing."""

    def run() -> Coupon:
        c = service.find_coupon(session, caller.tenant.id, code)
        return service.cancel_code(
            session, tenant_id=caller.tenant.id, coupon_id=c.id, reason=body.reason
        )

    c = write(session, run)
    campaign = service.get_campaign(session, caller.tenant.id, c.campaign_id)
    return code_out(c, campaign, service.redemptions_of(session, c.id))


# --------------------------------------------------------------------------- checkout


def _locale(
    session: SessionDep, tenant_id: uuid.UUID, locale: str | None, member_id: uuid.UUID | None
) -> str:
    if locale:
        return locale
    if member_id is not None:
        member = session.get(Member, member_id)
        if member is not None and member.tenant_id == tenant_id and member.locale in LOCALES:
            return member.locale
    return "id"


@router.post("/coupons/validate", response_model=ValidationOut, responses=problems(403, 404, 409))
def validate(
    body: ValidateIn, session: SessionDep, caller: PosCaller, locale: Locale = None
) -> ValidationOut:
    """Can this code be used on this cart now, and what discount does it give? Always
    `200` for a well-formed request: `valid: false` with a stable `reason_code` and the
    `reason` in the requested language when not (see the reason table in the docs). A code
    of another tenant is `unknown`. With `order_id`, a code already redeemed on that order
    is valid with the discount it gave (`redemption_id` set). A malformed cart (negative or float prices, unknown
    currency) is `422`; a merged or erased `member_id` is `409 member_not_active`. Writes
    nothing."""
    cart = body.cart.to_cart()
    check = service.validate(
        session,
        caller.tenant.id,
        code=body.code,
        cart=cart,
        member_id=body.member_id,
        order_id=body.order_id,
    )
    lang = _locale(session, caller.tenant.id, locale, body.member_id)
    o: Outcome = check.outcome
    campaign = check.campaign
    return ValidationOut(
        valid=o.valid,
        code=codes.normalize(body.code),
        discount=to_str(o.discount, cart.currency),
        currency=cart.currency,
        reason_code=o.reason_code,
        reason=None
        if o.reason_code is None
        else message(o.reason_code, lang, o.params, caller.tenant.timezone),
        reason_params=o.params,
        campaign=(
            None
            if campaign is None
            else CampaignRef(
                id=campaign.id,
                code=campaign.code,
                name=_name(campaign.names, lang),
                discount_type=campaign.discount_type,
            )
        ),
        coupon_id=None if check.coupon is None else check.coupon.id,
        redemption_id=None if check.redemption is None else check.redemption.id,
    )


@router.post(
    "/coupons/redeem",
    response_model=RedemptionOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(RedemptionOut, 200)},
)
def redeem(
    body: RedeemIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    locale: Locale = None,
) -> RedemptionOut:
    """Use the code on the order: all the checks of validate, then the code's use is
    taken atomically (a single-use code redeemed from many tills at once succeeds once).
    Refusals are `409` with code `coupon_<reason_code>` (e.g. `coupon_expired`,
    `coupon_used_up`, `coupon_min_spend_not_met`); an unknown code (or another tenant's)
    is `404 coupon_not_found`. The same code on the same order again answers `200` with the
    first redemption; so does a retry with the same `Idempotency-Key`."""
    cart = body.cart.to_cart()
    lang = _locale(session, caller.tenant.id, locale, body.member_id)
    payload = body.model_dump(mode="json")
    digest = request_hash(payload) if idempotency_key else None

    def run() -> tuple[CouponRedemption, bool]:
        return service.redeem(
            session,
            caller.tenant.id,
            code=body.code,
            order_id=body.order_id,
            cart=cart,
            member_id=body.member_id,
            message=lambda o: message(
                o.reason_code or "unknown", lang, o.params, caller.tenant.timezone
            ),
            idempotency_key=idempotency_key,
            request_hash=digest,
            cart_json=payload["cart"],
        )

    r, created = write(session, run)
    response.status_code = 201 if created else 200
    code = service.get_coupon(session, caller.tenant.id, r.coupon_id).code
    return redemption_out(r, code, created)


@router.post("/coupons/void", response_model=RedemptionOut, responses=problems(403, 404))
def void(body: VoidIn, session: SessionDep, caller: PosCaller) -> RedemptionOut:
    """The order was cancelled: its redemption of the code is voided and the code is usable
    again (its use and the campaign's budget are given back). A second void changes nothing
    and answers `200` with the voided redemption. `404 redemption_not_found` if the code was
    never redeemed on that order."""
    r, _ = write(
        session,
        lambda: service.void(
            session, caller.tenant.id, code=body.code, order_id=body.order_id, reason=body.reason
        ),
    )
    code = service.get_coupon(session, caller.tenant.id, r.coupon_id).code
    return redemption_out(r, code)


@router.get("/coupon-redemptions", response_model=Page[RedemptionOut], responses=problems(403))
def list_redemptions(
    session: SessionDep,
    caller: ReadCaller,
    order_id: str | None = None,
    campaign_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RedemptionOut]:
    """Redemptions, oldest first, of one order or one campaign."""
    rows = service.list_redemptions(
        session,
        caller.tenant.id,
        order_id=order_id,
        campaign_id=campaign_id,
        after=decode_cursor(cursor),
        limit=limit,
    )
    code_of = {
        r.coupon_id: service.get_coupon(session, caller.tenant.id, r.coupon_id).code for r in rows
    }
    return Page(
        data=[redemption_out(r, code_of[r.coupon_id]) for r in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )
