"""Member portal: the referral link, badges and challenges (with the leaderboard choice),
causes and donations, the profile with consents, "download my data" and "delete my account".
Mounted on ``pages.router``."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from setia.badges import service as badges
from setia.causes import service as causes
from setia.core import jsontext
from setia.core.api import write
from setia.core.errors import SetiaError
from setia.core.i18n import pick
from setia.core.time import utcnow, zone
from setia.members import service as members
from setia.referrals import api as referrals_api
from setia.referrals import service as referrals_service
from setia.web import security
from setia.web.deps import MEMBER_COOKIE, MemberWeb, PortalForm, WebContext, flash, set_cookie
from setia.web.errors import page, redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import LANGUAGE_NAMES, LOCALES, N_
from setia.web.portal.common import member_id, portal_balance, program_of
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

CHANNEL_LABELS = {
    "email": N_("Email"),
    "whatsapp": N_("WhatsApp"),
    "sms": N_("SMS"),
}
DONATE_ERRORS = {
    "donation_below_minimum": N_("Give at least %(minimum)s points."),
    "donation_above_maximum": N_("Give at most %(maximum)s points."),
    "insufficient_points": N_("You do not have that many points."),
    "below_minimum_redeem": N_("You can give points once your balance reaches %(minimum)s."),
    "cause_not_active": N_("This cause does not take donations now."),
    "cause_not_started": N_("This cause does not take donations yet."),
    "cause_ended": N_("This cause has ended."),
    "idempotency_key_reused": N_("This form was already used. Open the cause again."),
}


def local_today(web: WebContext) -> date:
    return utcnow().astimezone(zone(web.tz)).date()


DONATE_FAILED = N_("The donation could not be made. Try again.")


# --- referral -----------------------------------------------------------------------------


@router.get("/portal/refer", response_model=None)
def refer(request: Request, web: MemberWeb) -> Response:
    assert web.member is not None
    program = program_of(web)
    member = web.member
    try:
        view = write(
            web.session,
            lambda: referrals_api.member_view(web.session, web.tenant, member, program, web.lang),
        )
    except SetiaError:
        web.session.rollback()
        view = None
    return render(request, "portal/refer.html", {"active": "refer", "view": view})


PORTAL_SHARE_CHANNELS = ("whatsapp", "copy")


@router.post("/portal/refer/share", response_model=None)
def refer_share(request: Request, form: PortalForm, web: MemberWeb) -> Response:
    """Count a share of the member's link for the referral funnel, then go where the member
    was going: WhatsApp (a redirect to its share link) or nowhere (the copy button, by htmx:
    204). A count, not a write a retry must not repeat: each press is a share."""
    assert web.member is not None
    member = web.member
    channel = str(form.get("channel") or "")
    if channel not in PORTAL_SHARE_CHANNELS:
        return page(request, 422, web.t("Choose one of the options."))
    program = program_of(web)
    try:
        view = write(
            web.session,
            lambda: (
                referrals_service.record_share(
                    web.session, web.tenant.id, member, channel=channel, device_id=None
                ),
                referrals_api.member_view(web.session, web.tenant, member, program, web.lang),
            )[1],
        )
    except SetiaError:
        web.session.rollback()
        return redirect(request, "/portal/refer")
    if channel == "whatsapp":
        return redirect(request, view.whatsapp_url)
    return Response(status_code=204)


# --- badges -------------------------------------------------------------------------------


def _badges(request: Request, web: WebContext, errors: FieldErrors | None = None) -> Response:
    assert web.member is not None
    program = program_of(web)
    data = badges.member_badges(web.session, web.tenant, program, web.member, web.lang)
    consent = badges.consent_of(web.session, web.member.id)
    return render(
        request,
        "portal/badges.html",
        {
            "active": "home",
            "earned": data["earned"],
            "in_progress": data["in_progress"],
            "opted_in": bool(consent and consent.opted_in),
            "display_name": consent.display_name if consent else None,
            "shown_as": badges.display_name(web.member, consent),
            "errors": errors,
        },
        status_code=422 if errors else 200,
    )


@router.get("/portal/badges", response_model=None)
def badges_page(request: Request, web: MemberWeb) -> Response:
    return _badges(request, web)


@router.post("/portal/badges/leaderboard", response_model=None)
def leaderboard_choice(request: Request, form: PortalForm, web: MemberWeb) -> Response:
    assert web.member is not None
    member = web.member
    errors = FieldErrors(web)
    opted_in = form.get("opted_in") == "1"
    name = errors.text(form, "display_name", max_length=40)
    if errors:
        return _badges(request, web, errors)
    write(
        web.session,
        lambda: badges.set_consent(
            web.session, member, opted_in=opted_in, display_name=name, source="portal"
        ),
    )
    flash(
        request,
        web.t("You now appear on the leaderboards.")
        if opted_in
        else web.t("You no longer appear on the leaderboards."),
    )
    return redirect(request, "/portal/badges")


# --- causes -------------------------------------------------------------------------------


def _cause_view(web: WebContext, cause: Any, donors: int) -> dict[str, Any]:
    program = program_of(web)
    today = causes.local_today(web.tenant)
    return {
        "cause": cause,
        "name": pick(cause.names, web.lang) or cause.code,
        "description": pick(cause.descriptions, web.lang),
        "open": causes.is_open(cause, today),
        "progress": causes.progress(cause, program, donors, today, web.lang),
    }


@router.get("/portal/causes", response_model=None)
def causes_page(request: Request, web: MemberWeb) -> Response:
    program = program_of(web)
    rows = causes.list_causes(web.session, program.id, statuses=("active",))
    donors = causes.donors(web.session, [c.id for c in rows])
    mine = causes.member_donations(web.session, web.tenant.id, member_id(web), program.id)
    by_id = causes.causes_by_id(web.session, {d.cause_id for d in mine})
    return render(
        request,
        "portal/causes.html",
        {
            "active": "home",
            "program": program,
            "causes": [_cause_view(web, c, donors.get(c.id, 0)) for c in rows],
            "mine": [
                {"donation": d, "name": _cause_name(by_id.get(d.cause_id), web.lang)}
                for d in reversed(mine)
            ],
        },
    )


def _cause_name(cause: Any, lang: str) -> str:
    if cause is None:
        return ""
    return str(pick(cause.names, lang) or cause.code)


def _cause_page(
    request: Request,
    web: MemberWeb,
    cause_id: str,
    errors: FieldErrors | None = None,
    form: Any = None,
    status_code: int = 200,
) -> Response:
    try:
        cause = causes.get_cause(web.session, web.tenant.id, uuid.UUID(cause_id))
    except (ValueError, SetiaError):
        return page(request, 404)
    program = program_of(web)
    if cause.program_id != program.id or cause.status != "active":
        return page(request, 404)
    donors = causes.donors(web.session, [cause.id]).get(cause.id, 0)
    balance = portal_balance(web.session, program.id, member_id(web))
    return render(
        request,
        "portal/cause.html",
        {
            "active": "home",
            "program": program,
            "item": _cause_view(web, cause, donors),
            "available": balance["available"],
            "idem": uuid.uuid4().hex,
            "errors": errors,
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/portal/causes/{cause_id}", response_model=None)
def cause_page(request: Request, cause_id: str, web: MemberWeb) -> Response:
    return _cause_page(request, web, cause_id)


@router.post("/portal/causes/{cause_id}/donate", response_model=None)
def donate(request: Request, cause_id: str, form: PortalForm, web: MemberWeb) -> Response:
    errors = FieldErrors(web)
    points = errors.integer(form, "points", required=True, minimum=1, maximum=1_000_000_000)
    idem = errors.text(form, "idem", required=True, max_length=64)
    try:
        cause = causes.get_cause(web.session, web.tenant.id, uuid.UUID(cause_id))
    except (ValueError, SetiaError):
        return page(request, 404)
    if errors or points is None or idem is None:
        return _cause_page(request, web, cause_id, errors, form, 422)
    program = program_of(web)
    try:
        given = write(
            web.session,
            lambda: causes.give(
                web.session,
                tenant_id=web.tenant.id,
                program=program,
                cause_id=cause.id,
                member_id=member_id(web),
                points=points,
                idempotency_key=f"portal:{member_id(web)}:{idem}",
                actor=web.actor,
                source_type="portal",
            ),
        )
    except SetiaError as exc:
        web.session.rollback()
        message = DONATE_ERRORS.get(exc.code, DONATE_FAILED)
        errors.add_text(
            "points",
            web.t(
                message,
                minimum=exc.extra.get("min_points", exc.extra.get("minimum", "")),
                maximum=exc.extra.get("max_points", ""),
            ),
        )
        return _cause_page(request, web, cause_id, errors, form, 409)
    if given.created:
        flash(
            request,
            web.t(
                "Thank you! You gave %(points)s points. Receipt %(receipt)s.",
                points=given.donation.points,
                receipt=given.donation.receipt_number,
            ),
        )
    return redirect(request, "/portal/causes")


# --- profile ------------------------------------------------------------------------------


def _profile(
    request: Request,
    web: WebContext,
    errors: FieldErrors | None = None,
    form: Any = None,
    status_code: int = 200,
) -> Response:
    assert web.member is not None
    m = web.member
    values = form or {
        "name": m.name or "",
        "email": m.email or "",
        "birthday": m.birthday.isoformat() if m.birthday else "",
        "locale": m.locale,
    }
    return render(
        request,
        "portal/profile.html",
        {
            "active": "profile",
            "form": values,
            "errors": errors,
            "consents": members.current_consents(web.session, m.id),
            "channels": [(c, web.t(CHANNEL_LABELS[c])) for c in members.CHANNELS],
            "locales": [(code, LANGUAGE_NAMES[code]) for code in LOCALES],
        },
        status_code=status_code,
    )


@router.get("/portal/profile", response_model=None)
def profile(request: Request, web: MemberWeb) -> Response:
    return _profile(request, web)


@router.post("/portal/profile", response_model=None)
def save_profile(request: Request, form: PortalForm, web: MemberWeb) -> Response:
    assert web.member is not None
    member = web.member
    errors = FieldErrors(web)
    name = errors.text(form, "name", max_length=200)
    email = errors.text(form, "email", max_length=320)
    locale = errors.choice(form, "locale", list(LOCALES))
    raw_birthday = errors.text(form, "birthday", max_length=10)
    birthday: date | None = None
    if raw_birthday:
        try:
            birthday = date.fromisoformat(raw_birthday)
        except ValueError:
            errors.add("birthday", "Enter a date such as 1990-08-17.")
        else:
            if birthday.year < 1900:
                errors.add("birthday", "Enter a year from 1900 on.")
                birthday = None
            elif birthday >= local_today(web):
                errors.add("birthday", "Enter a date in the past.")
                birthday = None
    if email:
        # checked here too, so a bad email shows with the form's other mistakes at once
        try:
            members.normalize_email(email)
        except SetiaError:
            errors.add("email", "Enter an email address such as name@example.com.")
    if errors:
        return _profile(request, web, errors, form, 422)
    wanted: dict[str, Any] = {
        "name": name,
        "email": email,
        "birthday": birthday,
        "locale": locale,
    }
    changes = {k: v for k, v in wanted.items() if getattr(member, k) != v}
    if changes.get("locale") is None:
        changes.pop("locale", None)
    if changes:
        try:
            write(
                web.session,
                lambda: members.update_member(
                    web.session, web.tenant, member, changes, actor=web.actor
                ),
            )
        except SetiaError as exc:
            web.session.rollback()
            errors.from_error(
                exc,
                {"invalid_email": "email", "member_identity_taken": "email"},
                {
                    "invalid_email": N_("Enter an email address such as name@example.com."),
                    "member_identity_taken": N_("Another member already uses this email address."),
                },
            )
            return _profile(request, web, errors, form, 409)
        if "locale" in changes and web.web_session is not None:
            web.web_session.locale = str(changes["locale"])
            web.session.commit()
    flash(request, web.t("Your profile is saved."))
    return redirect(request, "/portal/profile")


@router.post("/portal/profile/consents", response_model=None)
def save_consents(request: Request, form: PortalForm, web: MemberWeb) -> Response:
    assert web.member is not None
    member = web.member
    current = members.current_consents(web.session, member.id)

    def run() -> int:
        changed = 0
        for channel in members.CHANNELS:
            granted = form.get(f"consent_{channel}") == "1"
            if current.get(channel, False) != granted:
                members.set_consent(web.session, member, channel, granted, source="portal")
                changed += 1
        return changed

    write(web.session, run)
    flash(request, web.t("Your choices are saved."))
    return redirect(request, "/portal/profile")


@router.get("/portal/profile/export", response_model=None)
def export(request: Request, web: MemberWeb) -> Response:
    assert web.member is not None
    data = members.export_member(web.session, web.tenant, web.member)
    body = jsontext.dumps(data)
    name = f"my-data-{local_today(web).isoformat()}.json"
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/portal/profile/delete", response_model=None)
def delete_page(request: Request, web: MemberWeb) -> Response:
    return render(request, "portal/delete.html", {"active": "profile", "errors": None})


@router.post("/portal/profile/delete", response_model=None)
def delete_account(request: Request, form: PortalForm, web: MemberWeb) -> Response:
    assert web.member is not None
    member = web.member
    errors = FieldErrors(web)
    if form.get("confirm") != "1":
        errors.add("confirm", "Tick the box to confirm that you want to delete your account.")
        return render(
            request, "portal/delete.html", {"active": "profile", "errors": errors}, status_code=422
        )

    def run() -> None:
        members.erase_member(
            web.session,
            web.tenant,
            member,
            actor=web.actor,
            reason="asked by the member in the portal",
        )
        security.end_sessions_of(web.session, member_id=member.id)

    write(web.session, run)
    set_cookie(request, MEMBER_COOKIE, "", path="/portal", max_age=0)
    flash(request, web.t("Your account is deleted. Your personal data was removed."), "info")
    return redirect(request, f"/portal/{web.tenant.id}/sign-in")
