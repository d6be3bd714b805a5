"""The demo's referral program: settings, a year of word of mouth among the demo's members
(some referrals qualified and rewarded, a few cancelled by a refund inside the return window,
some still waiting), a few advocates with many friends, a second level, and a suspicious
burst of sign-ups on one code held for review.

Called once the demo's events are recorded (``seed_referrals``); it runs in the caller's
transaction and does not commit. The historical referrals are written as the sign-up would
have written them (the member's join time, before their first order) and then qualified by
the job's own step at the moment their order's return window ended, in time order, so caps,
the second level and the ledger are exactly what a running system would have produced.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.db import new_id
from setia.core.time import as_utc, utcnow
from setia.events.models import Order
from setia.members import service as members
from setia.members.models import Member
from setia.programs.models import Program
from setia.referrals import service
from setia.referrals.models import Referral, ReferralDecision, ReferralShare
from setia.tenants.models import Tenant

SETTINGS: dict[str, Any] = {
    "enabled": True,
    "min_amount": Decimal(50000),
    "referrer_points": 500,
    "referee_points": 250,
    "level2_enabled": True,
    "level2_points": 100,
    "cap_per_month": 5,
    "cap_lifetime": 60,
    "velocity_count": 5,
    "velocity_minutes": 10,
    "share_url": "https://kopinusantara.id/r/{code}",
}
SHARE = 0.10  # of the members who joined in the year, this many came through a friend
BURST = 6


def seed_referrals(
    session: Session,
    tenant: Tenant,
    program: Program,
    rng: random.Random | int,
    now: datetime | None = None,
) -> dict[str, Any]:
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    now = now or utcnow()
    start = now - timedelta(days=365)
    settings = dict(SETTINGS)
    if program.currency != "IDR":
        settings["min_amount"] = Decimal(15)
    service.put_settings(session, tenant, program, settings, actor="demo")
    people = list(
        session.execute(
            select(Member)
            .where(Member.tenant_id == tenant.id, Member.status == "active")
            .order_by(Member.created_at, Member.id)
        ).scalars()
    )
    if len(people) < 4:
        return {"referrals": 0}
    first_order = dict(
        session.execute(
            select(Order.member_id, func.min(Order.occurred_at))
            .where(Order.program_id == program.id)
            .group_by(Order.member_id)
        ).all()
    )
    # Members whose first big order was refunded: a few of them came through a friend too,
    # so the demo shows referrals cancelled by a refund inside the return window.
    refunded = set(
        session.execute(
            select(Order.member_id).where(
                Order.program_id == program.id,
                Order.refunded_amount > 0,
                Order.amount - Order.refunded_amount < settings["min_amount"],
            )
        ).scalars()
    )
    # A few advocates bring most friends (word of mouth is lopsided).
    advocates = _advocates(people, rng)
    weights = [rng.choice((1, 2, 3, 8)) for _ in advocates]
    chosen: list[tuple[Member, Member]] = []
    for m in people:
        joined = as_utc(m.created_at)
        share = 0.5 if m.id in refunded else SHARE
        if joined < start + timedelta(days=20) or m in advocates or rng.random() > share:
            continue
        bought = first_order.get(m.id)
        if bought is not None and as_utc(bought) < joined:
            continue  # not a new customer
        elders = [
            (a, w) for a, w in zip(advocates, weights, strict=True) if as_utc(a.created_at) < joined
        ]
        if elders and rng.random() < 0.8:
            referrer = rng.choices([a for a, _ in elders], [w for _, w in elders])[0]
        else:
            earlier = [p for p in people if as_utc(p.created_at) < joined and p is not m]
            if not earlier:
                continue
            referrer = rng.choice(earlier[-200:])
        chosen.append((m, referrer))
    # Friends of friends: some referees' own friends (the second level).
    referees = {m.id for m, _ in chosen}
    extra: list[tuple[Member, Member]] = []
    for m in people:
        if m.id in referees or m in advocates or rng.random() > 0.5:
            continue
        uplines = [
            r for r, _ in chosen if as_utc(r.created_at) + timedelta(days=3) < as_utc(m.created_at)
        ]
        if uplines and len(extra) < max(1, len(chosen) // 5):
            bought = first_order.get(m.id)
            if bought is None or as_utc(bought) >= as_utc(m.created_at):
                extra.append((m, rng.choice(uplines)))
                referees.add(m.id)
    pairs = sorted(chosen + extra, key=lambda p: as_utc(p[0].created_at))
    made: list[Referral] = []
    for referee, referrer in pairs:
        if referee.id == referrer.id:
            continue
        code = service.ensure_code(session, tenant.id, referrer)
        at = as_utc(referee.created_at)
        referral = Referral(
            id=new_id(),
            tenant_id=tenant.id,
            program_id=program.id,
            code_id=code.id,
            code=code.code,
            referrer_id=referrer.id,
            referee_id=referee.id,
            status="pending",
            source="signup",
            created_at=at,
            updated_at=at,
        )
        session.add(referral)
        session.add(
            ReferralDecision(
                id=new_id(),
                tenant_id=tenant.id,
                referral_id=referral.id,
                to_status="pending",
                actor="demo",
                reason=f"signed up with code {code.code}",
                created_at=at,
            )
        )
        # The link was shared a few times before the friend signed up.
        for _ in range(rng.randint(1, 3)):
            session.add(
                ReferralShare(
                    id=new_id(),
                    tenant_id=tenant.id,
                    member_id=referrer.id,
                    channel=rng.choice(("whatsapp", "whatsapp", "whatsapp", "copy", "sms")),
                    created_at=at - timedelta(hours=rng.randint(1, 240)),
                )
            )
        made.append(referral)
    session.flush()
    # Qualify in the order the return windows ended, as the job would have.
    due: list[tuple[datetime, Referral]] = []
    for r in made:
        order = session.execute(
            select(Order.occurred_at)
            .where(
                Order.member_id == r.referee_id,
                Order.program_id == program.id,
                Order.amount >= settings["min_amount"],
            )
            .order_by(Order.occurred_at)
            .limit(1)
        ).scalar_one_or_none()
        if order is not None:
            when = as_utc(order) + timedelta(days=program.pending_days, hours=rng.randint(1, 20))
            if when < now:
                due.append((when, r))
    outcomes: dict[str, int] = {}
    for when, r in sorted(due, key=lambda x: (x[0], x[1].id)):
        status = service.process(session, r.id, when) or "pending"
        outcomes[status] = outcomes.get(status, 0) + 1
    burst = _burst(session, tenant, program, rng, now)
    counts = dict(
        session.execute(
            select(Referral.status, func.count())
            .where(Referral.program_id == program.id)
            .group_by(Referral.status)
        ).all()
    )
    return {
        "referrals": sum(int(v) for v in counts.values()),
        "by_status": {k: int(v) for k, v in sorted(counts.items())},
        "held_burst_code": burst,
    }


def _persona_type(m: Member) -> str | None:
    persona = (m.attributes or {}).get("demo_persona")
    return persona.get("loyalty_type") if isinstance(persona, dict) else None


def _advocates(people: list[Member], rng: random.Random) -> list[Member]:
    """The few members who bring most friends, among the earlier third of the members (they
    need time to bring friends). Members whose demo persona is emotional (advocacy is what
    makes them so) are taken first, so the referrals agree with the demo's ground truth; the
    rest, or all of them when no member has a persona, are picked at random."""
    k = min(12, max(2, len(people) // 10))
    pool = people[: max(2, len(people) // 3)]
    fans = [m for m in pool if _persona_type(m) == "emotional"]
    chosen = rng.sample(fans, k=min(k, len(fans)))
    if len(chosen) < k:
        taken = {m.id for m in chosen}
        rest = [m for m in pool if m.id not in taken]
        chosen += rng.sample(rest, k=k - len(chosen))
    return chosen


def _burst(
    session: Session, tenant: Tenant, program: Program, rng: random.Random, now: datetime
) -> str:
    """Six sign-ups on one code within five minutes, two days ago: all held for review."""
    earliest = session.execute(
        select(Member)
        .where(Member.tenant_id == tenant.id, Member.status == "active")
        .order_by(Member.created_at)
        .limit(21)
    ).scalars()
    referrer = rng.choice(list(earliest))
    code = service.ensure_code(session, tenant.id, referrer)
    at = now - timedelta(days=2, hours=3)
    farm = rng.randint(10_000_000, 89_999_000)  # a phone farm's consecutive numbers
    for i in range(BURST):
        signed = at + timedelta(seconds=40 * i + rng.randint(0, 30))
        member = members.create_member(
            session,
            tenant,
            {
                "external_id": f"DEMO-BURST-{code.code}-{i + 1}",
                "name": f"Pelanggan Baru {i + 1}",
                "phone": f"+62813{farm + i}",
                "locale": "id",
                "tags": ["demo-burst"],
            },
            source="demo",
        )
        member.created_at = member.updated_at = signed
        service.attach(
            session,
            tenant,
            program,
            member,
            code.code,
            device_id=f"emu-{rng.randint(1000, 9999)}",
            actor="demo",
            source="signup",
            now=signed,
        )
    session.flush()
    return code.code
