"""The member's tier, as a member asks about it: where am I, since when, until when is it
safe, how much more to the next tier, what will tonight's evaluation do, and why did it
change. Sentences in Bahasa Indonesia, Malay or English."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from setia.core.i18n import babel_locale
from setia.core.money import display
from setia.members.models import Member
from setia.programs.models import Program
from setia.tenants.models import Tenant
from setia.tiers import rules
from setia.tiers.models import Tier, TierChange
from setia.tiers.rules import State, Structure, TierDef
from setia.tiers.service import (
    load_state,
    local_today,
    member_figures,
    qualification_figures,
    require_structure,
)

WORDS: dict[str, dict[str, str]] = {
    "id": {
        "points": "poin",
        "orders": "pesanan",
        "visits": "kunjungan",
        "event": "kali {event}",
        "or": "atau",
        "and": "dan",
        "more": "lagi",
        "reach": "{need} {more} {deadline}untuk mencapai {tier}",
        "before": "sebelum {date} ",
        "stay": "Evaluasi berikutnya ({date}): tetap di {tier}.",
        "down": "Evaluasi berikutnya ({date}): turun ke {tier}.",
        "up": "Evaluasi berikutnya ({date}): naik ke {tier}.",
        "at_risk": "Tanpa transaksi lagi, {tier} turun ke {to} pada {date}.",
        "top": "Anda sudah di tingkat tertinggi.",
    },
    "ms": {
        "points": "mata",
        "orders": "pesanan",
        "visits": "lawatan",
        "event": "kali {event}",
        "or": "atau",
        "and": "dan",
        "more": "lagi",
        "reach": "{need} {more} {deadline}untuk mencapai {tier}",
        "before": "sebelum {date} ",
        "stay": "Penilaian seterusnya ({date}): kekal di {tier}.",
        "down": "Penilaian seterusnya ({date}): turun ke {tier}.",
        "up": "Penilaian seterusnya ({date}): naik ke {tier}.",
        "at_risk": "Tanpa urus niaga lagi, {tier} turun ke {to} pada {date}.",
        "top": "Anda sudah di peringkat tertinggi.",
    },
    "en": {
        "points": "points",
        "orders": "orders",
        "visits": "visits",
        "event": "× {event}",
        "or": "or",
        "and": "and",
        "more": "more",
        "reach": "{need} to go {deadline}for {tier}",
        "before": "before {date} ",
        "stay": "Next evaluation ({date}): stays {tier}.",
        "down": "Next evaluation ({date}): moves down to {tier}.",
        "up": "Next evaluation ({date}): moves up to {tier}.",
        "at_risk": "Without more activity, {tier} drops to {to} on {date}.",
        "top": "You are in the highest tier.",
    },
}


def plain(value: Decimal) -> str:
    """250000.0000 → "250000"; 12.50 → "12.5"."""
    return format(value.normalize(), "f") if value else "0"


def _ref(t: TierDef, locale: str) -> dict[str, Any]:
    return {"id": t.id, "code": t.code, "name": t.names.get(locale, t.code), "rank": t.rank}


def _amount(metric: dict[str, Any], value: Decimal, program: Program, locale: str) -> str:
    words = WORDS[locale]
    if metric["metric"] == "spend":
        return display(value, program.currency, babel_locale(locale))
    number = format_decimal(value, locale=babel_locale(locale))
    if metric["metric"] == "event":
        return f"{number} {words['event'].format(event=metric['event_type'])}"
    return f"{number} {words[metric['metric']]}"


def _day(d: date, locale: str) -> str:
    return format_date(d, "medium", locale=babel_locale(locale))


def progress(
    s: Structure,
    program: Program,
    current: TierDef,
    values: list[Decimal],
    window_end: date | None,
    locale: str,
) -> dict[str, Any] | None:
    """What is missing to reach the next tier in this window, per metric, and in a sentence
    ("Rp 250.000 or 3 more visits before 31 Dec 2026 to reach Emas")."""
    nxt = s.next_tier(current)
    words = WORDS[locale]
    if nxt is None:
        return {"next_tier": None, "remaining": [], "deadline": None, "message": words["top"]}
    remaining = []
    for metric, have, need in zip(s.metrics, values, nxt.thresholds, strict=True):
        remaining.append(
            {
                "metric": metric["metric"],
                "event_type": metric.get("event_type"),
                "have": plain(have),
                "threshold": plain(need),
                "missing": plain(max(Decimal(0), need - have)),
            }
        )
    missing = [
        _amount(m, Decimal(r["missing"]), program, locale)
        for m, r in zip(s.metrics, remaining, strict=True)
        if Decimal(r["missing"]) > 0
    ]
    joiner = f" {words['or' if s.combine == 'any' else 'and']} "
    deadline = words["before"].format(date=_day(window_end, locale)) if window_end else ""
    message = words["reach"].format(
        need=joiner.join(missing),
        more=words["more"],
        deadline=deadline,
        tier=nxt.names.get(locale, nxt.code),
    )
    return {
        "next_tier": _ref(nxt, locale),
        "combine": s.combine,
        "remaining": remaining,
        "deadline": window_end,
        "message": message,
    }


def member_view(
    session: Session,
    tenant: Tenant,
    program: Program,
    member: Member,
    *,
    on: date | None = None,
    locale: str | None = None,
) -> dict[str, Any]:
    s = require_structure(session, program.id)
    lang = locale or member.locale or tenant.locale or "id"
    lang = lang if lang in WORDS else "en"
    day = on or local_today(tenant)
    st: State = load_state(session, tenant, s, member.id, lock=False)
    start, end = s.window_for(day, st.anchor_day)
    # What counts so far: the window's days up to today (none after it, even if backdated
    # activity were dated later).
    values = member_figures(session, s, member.id, start, min(end, day) if end else day)
    current = s.tier(st.tier_id)
    earned = s.tier(st.earned_tier_id)
    tier_row = session.get(Tier, current.id)
    assert tier_row is not None
    # What the next evaluation (the start of tomorrow) would do with today's figures.
    tomorrow = day + timedelta(days=1)
    t_start, t_end = s.window_for(tomorrow, st.anchor_day)
    t_values = member_figures(
        session, s, member.id, t_start, min(t_end, tomorrow) if t_end else tomorrow
    )
    revoked = (
        qualification_figures(session, s, member.id, st, tomorrow)
        if st.revoked_on is not None
        else None
    )
    projected = rules.decide_evaluation(
        s, st, t_values, tomorrow, member.created_at, qualification_values=revoked
    )
    after = s.tier(projected.state.tier_id)
    words = WORDS[lang]
    key = "stay" if after.rank == current.rank else ("up" if after.rank > current.rank else "down")
    next_eval: dict[str, Any] = {
        "on": tomorrow,
        "action": {"stay": "stay", "up": "upgrade", "down": "downgrade"}[key],
        "tier": _ref(after, lang),
        "message": words[key].format(
            date=_day(tomorrow, lang), tier=after.names.get(lang, after.code)
        ),
    }
    q = s.qualified(values)
    floor = rules.protected_floor(s, st, day)
    at_risk = None
    drop_on = rules._downgrade_on(s, st)
    target = rules._downgrade_target(s, earned, q, floor)
    if earned.rank > q.rank and drop_on is not None and target.rank < earned.rank:
        at_risk = {
            "tier": earned.code,
            "would_become": target.code,
            "on": drop_on,
            "message": words["at_risk"].format(
                tier=earned.names.get(lang, earned.code),
                to=target.names.get(lang, target.code),
                date=_day(drop_on, lang),
            ),
        }
    in_grace = (
        st.secure_until is not None
        and earned.rank > q.rank
        and st.secure_until < day <= st.secure_until + timedelta(days=s.grace_days)
    )
    return {
        "program_id": program.id,
        "member_id": member.id,
        "locale": lang,
        "on": day,
        "tier": _ref(current, lang),
        "since": st.since,
        "earned_tier": _ref(earned, lang),
        "secure_until": None if st.secure_until == rules.FOREVER else st.secure_until,
        "in_grace": in_grace,
        "revoked_on": st.revoked_on,
        "override": (
            {
                "tier": s.tier(st.override_tier_id).code,
                "until": st.override_until,
                "reason": st.override_reason,
            }
            if st.override_tier_id
            else None
        ),
        "plan": (
            {"tier": s.tier(st.plan_tier_id).code, "mode": st.plan_mode, "until": st.plan_until}
            if st.plan_tier_id
            else None
        ),
        "window": {"kind": s.window["kind"], "start": start, "end": end},
        "figures": [
            {"metric": m["metric"], "event_type": m.get("event_type"), "value": plain(v)}
            for m, v in zip(s.metrics, values, strict=True)
        ],
        "qualifies_for": _ref(q, lang),
        # A rolling window has no deadline: days leave it as new ones come in.
        "progress": progress(
            s, program, current, values, None if s.window["kind"] == "rolling" else end, lang
        ),
        "next_evaluation": next_eval,
        "at_risk": at_risk,
        "benefits": {
            "earn_multiplier": str(tier_row.earn_multiplier),
            "support_priority": tier_row.support_priority,
            "perks": [p.get(lang) or p.get("en") for p in tier_row.perks],
        },
    }


def history(
    session: Session, tier_set_id: uuid.UUID, member_id: uuid.UUID, limit: int = 200
) -> list[dict[str, Any]]:
    src, dst = aliased(Tier), aliased(Tier)
    rows = session.execute(
        select(TierChange, src.code, dst.code)
        .outerjoin(src, src.id == TierChange.from_tier_id)
        .join(dst, dst.id == TierChange.to_tier_id)
        .where(TierChange.tier_set_id == tier_set_id, TierChange.member_id == member_id)
        .order_by(TierChange.at.desc(), TierChange.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "at": c.at,
            "on_day": c.on_day,
            "reason": c.reason,
            "from_tier": f,
            "to_tier": t,
            "actor": c.actor,
            "details": c.details,
        }
        for c, f, t in rows
    ]


def summary(session: Session, tenant: Tenant, s: Structure) -> list[dict[str, Any]]:
    """Members per effective tier; members never moved from the base tier count there."""
    from setia.tiers.models import MemberTier

    counts = dict(
        session.execute(
            select(MemberTier.tier_id, func.count())
            .join(Member, Member.id == MemberTier.member_id)
            .where(MemberTier.tier_set_id == s.id, Member.status == "active")
            .group_by(MemberTier.tier_id)
        ).all()
    )
    total = session.execute(
        select(func.count()).where(Member.tenant_id == tenant.id, Member.status == "active")
    ).scalar_one()
    placed = sum(int(v) for k, v in counts.items() if k != s.base.id)
    counts[s.base.id] = int(total) - placed
    return [{"tier": t.code, "rank": t.rank, "members": int(counts.get(t.id, 0))} for t in s.tiers]
