"""The "Kopi Nusantara" demo: a coffee chain in Bandung and Jakarta with a year of history.

``build_demo`` creates the tenant and its points program, enrols the members, and replays
twelve months of purchases, refunds and redemptions through the same services the API uses
(``record_batch`` for events, ``ledger.spend`` for redemptions, ``run_due`` for releases and
expiry), so the demo ledger is a real ledger: ``setia ledger verify`` passes on it.

The history is replayed in time order, one week (or part of a month) at a time: before each
window the due work runs *as of the window's start*, so points expire when they would have,
and each window's redemptions only spend points members really had by then.

Everything is drawn from ``random.Random(seed)``: the same seed gives the same members,
orders and event ids (``demo-1``, ``demo-2``, ... in time order).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.time import add_months, as_utc, utcnow, zone
from setia.demo import badges as demo_badges
from setia.demo import catalog as cat
from setia.demo import tiers as demo_tiers
from setia.demo import web as demo_web
from setia.demo.badges import seed_badges
from setia.demo.referrals import seed_referrals
from setia.demo.rewards import seed_catalog
from setia.events.api import record_batch
from setia.events.models import Event
from setia.jobs.service import run_due
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.ledger.models import POINTS, Account, Transfer
from setia.members import service as members
from setia.members.models import Member
from setia.memberships.demo import seed_demo as seed_memberships
from setia.programs import service as programs
from setia.programs.models import Program
from setia.tenants import service as tenants
from setia.tenants.models import Tenant

TZ_NAME = "Asia/Jakarta"
TZ = zone(TZ_NAME)
CHUNK = 500
# The program: 1 point per Rp 1.000 (rounded down), 7 days pending (the return window),
# points expire at the end of the 6th calendar month after the month they were earned in.
PROGRAM_SETTINGS: dict[str, Any] = {
    "name": cat.PROGRAM_NAME,
    "points_name": "Poin",
    "earn_points": 1,
    "earn_per_amount": Decimal(1000),
    "rounding": "floor",
    "pending_days": 7,
    "expiry_policy": "end_of_period",
    "expiry_months": 6,
    "expiry_period": "month",
    "min_redeem_points": 0,
    "cost_per_point": Decimal(10),
    "refund_shortfall": "debt",
}
# Ground truth: every member is generated as one persona, a happy-vs-loyal label and a
# loyalty type, with the share of members below. The classifier (setia.analytics.labels)
# never sees it; it is stored on the member as ``attributes.demo_persona`` for
# ``setia analytics evaluate-demo`` (see docs/analytics.md, "The demo's ground truth").
PERSONAS = (
    ("loyal", "habitual", 0.14),  # a routine: fixed weekdays or a fixed cadence, all year
    ("loyal", "transactional", 0.08),  # comes for 2x weekends, Es Kopi Pandan 3x, 12.12
    ("loyal", "emotional", 0.06),  # comes often and writes reviews
    ("loyal", "none", 0.08),  # comes now and then, no pattern
    ("happy", "none", 0.14),  # bought once or twice, a month to six months ago
    ("new", "none", 0.12),  # first purchase in the last four weeks
    ("at_risk", "habitual", 0.05),  # a repeat buyer who stopped 50 to 165 days ago
    ("at_risk", "transactional", 0.03),
    ("at_risk", "emotional", 0.02),
    ("at_risk", "none", 0.04),
    ("lost", "habitual", 0.05),  # stopped 190 to 330 days ago
    ("lost", "transactional", 0.03),
    ("lost", "emotional", 0.02),
    ("lost", "none", 0.14),  # half of them one- or two-time buyers
)
PERSONA_LABELS = ("loyal", "happy", "new", "at_risk", "lost")
PERSONA_TYPES = ("habitual", "transactional", "emotional", "none")
# The weekdays of a habitual member's routine (0 = Monday), by weight.
ROUTINES: tuple[tuple[tuple[int, ...], float], ...] = (
    ((0, 1, 2, 3, 4), 1),  # every working day, on the way to the office
    ((0, 2, 4), 2),
    ((1, 3), 3),
    ((0, 3), 2),
    ((2,), 2),  # once a week
    ((4,), 2),
    ((5,), 1),  # Saturday morning
)
REVIEW_TEXTS = {
    5: ("Kopinya enak banget, barista ramah!", "Tempat favorit buat ngopi pagi.", "Mantap!"),
    4: ("Enak, cuma antreannya agak panjang.", "Suka suasananya.", "Kopi susunya pas."),
    3: ("Lumayan.", "Biasa saja, agak mahal.", "Pesanan agak lama."),
}

Weighted = tuple[tuple[Any, float], ...]
SIGNUP: Weighted = (("pos-form", 6), ("app-signup", 3), ("web-form", 1))
DRINKS_DELIVERY: Weighted = ((1, 45), (2, 35), (3, 13), (4, 7))
DRINKS_APP: Weighted = ((1, 75), (2, 20), (3, 5))
DRINKS_POS: Weighted = ((1, 85), (2, 12), (3, 3))
# What members save up for: most take the Rp 5.000 voucher as soon as they can.
SAVING_FOR: Weighted = ((500, 50), (1_000, 30), (2_500, 20))


class DemoError(Exception):
    """The demo could not be built (a bug in the generator: the services refused its data)."""


@dataclass
class Persona:
    n: int
    label: str  # ground truth: loyal, happy, new, at_risk, lost
    loyalty: str  # ground truth: habitual, transactional, emotional, none
    external_id: str
    name: str
    phone: str
    email: str | None
    locale: str
    birthday: date | None
    tags: list[str]
    home: cat.Store
    joined: datetime
    stops: datetime
    weekly: float
    weekend_factor: float
    favorite: cat.Item
    channels: Weighted
    phone_style: int
    redeem_propensity: float
    saving_for: int  # points of the reward the member waits for before redeeming
    consents: dict[str, tuple[bool, str]]
    style: str = "random"  # routine, deals, random or few (how visits are drawn)
    weekdays: tuple[int, ...] = ()  # routine: the days of the week
    every_days: int = 0  # routine: a cadence in days instead of weekdays
    attend: float = 0.0  # routine: chance of keeping the routine; deals: of a weekend day
    extra: float = 0.0  # chance of an unplanned visit on any other day
    breaks: list[tuple[date, date]] = field(default_factory=list)  # holidays, mudik
    visits: int = 0  # few: 1 or 2 visits
    reviews: int = 0  # reviews (review.submitted) the member writes
    member_id: uuid.UUID | None = None

    @property
    def segment(self) -> str:
        """The persona, e.g. ``loyal/habitual`` (as stored in ``attributes.demo_persona``)."""
        return f"{self.label}/{self.loyalty}"


@dataclass(order=True)
class Action:
    at: datetime
    persona: int
    seq: int
    kind: str = field(compare=False)
    data: dict[str, Any] = field(compare=False)


@dataclass
class Totals:
    purchases: int = 0
    refunds: int = 0
    reviews: int = 0
    redemptions: int = 0
    points_redeemed: int = 0
    rewards: Counter[str] = field(default_factory=Counter)


# --------------------------------------------------------------------------- people


_CUM: dict[Weighted, tuple[list[Any], list[float]]] = {}


def _pick(rng: random.Random, weighted: Weighted) -> Any:
    """One value of ``(value, weight)`` pairs, drawn by weight."""
    found = _CUM.get(weighted)
    if found is None:
        values, cum, total = [], [], 0.0
        for value, weight in weighted:
            total += weight
            values.append(value)
            cum.append(total)
        found = _CUM[weighted] = (values, cum)
    return rng.choices(found[0], cum_weights=found[1])[0]


def _phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        number = "+62" + rng.choice(cat.PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if number in taken:
            continue
        if phonenumbers.is_valid_number(phonenumbers.parse(number, "ID")):
            taken.add(number)
            return number


def _email(rng: random.Random, name: str, taken: set[str]) -> str:
    parts = name.lower().split()
    while True:
        style = rng.random()
        if len(parts) > 1 and style < 0.4:
            local = f"{parts[0]}.{parts[-1]}"
        elif len(parts) > 1 and style < 0.6:
            local = f"{parts[0][0]}{parts[-1]}"
        else:
            local = parts[0]
        if rng.random() < 0.6 or local in taken:
            local += str(rng.choice([rng.randrange(1, 100), rng.randrange(1985, 2006)]))
        email = f"{local}@{rng.choice(cat.EMAIL_DOMAINS)}"
        if email not in taken:
            taken.add(email)
            return email


def _quotas(count: int) -> list[tuple[str, str]]:
    """Exact persona quotas (at least one of each when there are enough members)."""
    kinds = [(label, kind) for label, kind, _ in PERSONAS]
    quotas = {(label, kind): int(share * count) for label, kind, share in PERSONAS}
    if count >= len(PERSONAS):
        for k in quotas:
            quotas[k] = max(quotas[k], 1)
    while sum(quotas.values()) > count:
        biggest = max(quotas, key=lambda k: quotas[k])
        quotas[biggest] -= 1
    i = 0
    while sum(quotas.values()) < count:
        quotas[kinds[i % len(kinds)]] += 1
        i += 1
    return [k for k in kinds for _ in range(quotas[k])]


def _breaks(rng: random.Random, start: datetime, now: datetime) -> list[tuple[date, date]]:
    """One or two holidays of a routine: mudik at Lebaran, a trip, a week of flu."""
    first, last = start.astimezone(TZ).date(), now.astimezone(TZ).date()
    span = (last - first).days
    out = []
    for _ in range(rng.choice((1, 1, 2))):
        begin = first + timedelta(days=rng.randrange(max(1, span - 10)))
        out.append((begin, begin + timedelta(days=rng.randint(6, 15))))
    return out


def _behaviour(rng: random.Random, p: Persona, start: datetime, now: datetime) -> None:
    """Dates and visit pattern of the persona's label and loyalty type (the ground truth)."""
    span = (now - start).total_seconds()
    days = timedelta(days=1)
    if p.label == "loyal":
        p.joined = (
            start - rng.uniform(1, 540) * days
            if rng.random() < 0.65
            else start + timedelta(seconds=rng.uniform(0, span * 0.6))
        )
        p.stops = now
    elif p.label == "at_risk":
        p.joined = (
            start - rng.uniform(1, 300) * days
            if rng.random() < 0.6
            else start + timedelta(seconds=rng.uniform(0, span * 0.3))
        )
        p.stops = now - rng.uniform(50, 165) * days
    elif p.label == "lost":
        p.joined = start - rng.uniform(1, 400) * days if rng.random() < 0.7 else start
        p.stops = now - rng.uniform(190, 330) * days
    elif p.label == "happy":
        p.joined = now - rng.uniform(32, 175) * days
        p.stops = now
    else:  # new
        p.joined = now - rng.uniform(1, 28) * days
        p.stops = now
    if p.label in ("at_risk", "lost"):
        p.joined = min(p.joined, p.stops - rng.uniform(42, 120) * days)
    # Members sign up in opening hours (and the few-visit ones buy right after).
    local = p.joined.astimezone(TZ)
    keys, cum = HOURS["weekend" if local.weekday() >= 5 else "weekday"]
    hour = rng.choices(keys, cum_weights=cum)[0]
    p.joined = as_utc(
        datetime(local.year, local.month, local.day, hour, rng.randrange(60), tzinfo=TZ)
    )
    if p.joined >= now - timedelta(hours=1):
        p.joined -= timedelta(days=1)
    if p.label in ("happy", "new") or (p.label == "lost" and p.loyalty == "none" and p.n % 2):
        # Enrolled at the till on their first visit; a second visit for some.
        p.style = "few"
        p.visits = 2 if rng.random() < 0.35 else 1
        if p.label == "lost":
            p.joined = now - rng.uniform(190, 355) * days
            p.stops = p.joined + rng.uniform(3, 30) * days
        if p.label == "new":
            p.style = "new"
            p.weekly = rng.uniform(0.3, 2.0)
        if rng.random() < 0.2:
            p.reviews = 1  # a satisfied first-timer says so once
        return
    if p.loyalty == "habitual":
        p.style = "routine"
        if rng.random() < 0.15:
            p.every_days = rng.choice((4, 5, 7, 10, 14))
        else:
            p.weekdays = _pick(rng, tuple((r, w) for r, w in ROUTINES))
        p.attend = rng.uniform(0.7, 0.95)
        p.extra = rng.uniform(0.0, 0.02)
        p.breaks = _breaks(rng, start, now)
        p.reviews = _pick(rng, ((0, 85), (1, 10), (2, 5)))
    elif p.loyalty == "transactional":
        # Comes for the deals: the 2x weekend, the 3x Es Kopi Pandan, Harbolnas 12.12 online;
        # spends points as soon as there are enough for the smallest voucher.
        p.style = "deals"
        p.attend = rng.uniform(0.25, 0.55)
        p.extra = rng.uniform(0.01, 0.04)
        p.redeem_propensity = rng.uniform(0.8, 1.0)
        p.saving_for = 500
        go = rng.random()
        p.channels = (
            ("pos", 0.55),
            ("app", 0.3),
            ("gofood", 0.15 * go),
            ("grabfood", 0.15 * (1 - go)),
        )
        if rng.random() < 0.7:
            p.favorite = next(d for d in cat.DRINKS if d.sku == "ES-KOPI-PANDAN")
        p.reviews = 1 if rng.random() < 0.5 else 0  # the first review earns 50 Poin
    elif p.loyalty == "emotional":
        p.style = "random"
        p.weekly = rng.uniform(0.4, 1.4)
        p.reviews = rng.choice((1, 2, 3, 3, 4, 5, 6, 8))  # some fans hardly write
        p.redeem_propensity = 0.0 if rng.random() < 0.6 else rng.uniform(0.1, 0.3)
    else:
        p.style = "random"
        p.weekly = rng.uniform(0.2, 0.9)
        p.reviews = _pick(rng, ((0, 87), (1, 10), (2, 3)))
    if p.label == "loyal" and rng.random() < 0.06:
        # Away for a while and coming back (a posting out of town, a long mudik): loyal, but
        # the data shows only a silence.
        today = now.astimezone(TZ).date()
        p.breaks.append((today - timedelta(days=rng.randint(35, 70)), today))


def make_personas(rng: random.Random, count: int, start: datetime, now: datetime) -> list[Persona]:
    phones: set[str] = set()
    emails: set[str] = set()
    personas = _quotas(count)
    rng.shuffle(personas)
    today = now.astimezone(TZ).date()
    out = []
    for n, (label, loyalty) in enumerate(personas, start=1):
        female = rng.random() < 0.5
        first = rng.choice(cat.FEMALE_NAMES if female else cat.MALE_NAMES)
        if rng.random() < 0.25:
            name = first  # many Indonesians go by one name
        else:
            pool = cat.FAMILY_NAMES + (cat.FEMALE_FAMILY_NAMES if female else ())
            name = f"{first} {rng.choice(pool)}"
        age = int(min(60, max(17, rng.gauss(29, 8))))
        tags: list[str] = []
        if age <= 24 and rng.random() < 0.7:
            tags.append("mahasiswa")
        elif age >= 23 and rng.random() < 0.55:
            tags.append("kantor")
        if rng.random() < 0.07:
            tags.append("ojol")
        if "kantor" not in tags and age >= 22 and rng.random() < 0.15:
            tags.append("freelancer")
        if age >= 30 and rng.random() < 0.2:
            tags.append("keluarga")
        birthday = None
        if rng.random() < 0.8:
            birthday = date(today.year - age, rng.randint(1, 12), rng.randint(1, 28))
        # Bandung is home; Jakarta came later.
        bandung = [s for s in cat.STORES if s.city == "Bandung"]
        jakarta = [s for s in cat.STORES if s.city == "Jakarta"]
        home = rng.choice(bandung if rng.random() < 0.55 else jakarta)

        if "kantor" in tags:
            weekend_factor = 0.45
        elif "mahasiswa" in tags:
            weekend_factor = 0.9
        else:
            weekend_factor = 1.3
        fav = rng.choices(cat.DRINKS, weights=[d.weight for d in cat.DRINKS])[0]
        delivery = rng.uniform(0.05, 0.45) if rng.random() < 0.6 else 0.02
        app = rng.uniform(0.05, 0.4) if rng.random() < 0.4 else 0.0
        go = rng.random()
        channels = (
            ("pos", max(0.05, 1 - delivery - app)),
            ("app", app),
            ("gofood", delivery * go),
            ("grabfood", delivery * (1 - go)),
        )
        email = _email(rng, name, emails) if rng.random() < 0.6 else None
        signup = _pick(rng, SIGNUP)
        consents: dict[str, tuple[bool, str]] = {}
        roll = rng.random()
        if roll < 0.7:
            consents["whatsapp"] = (True, signup)
        elif roll < 0.85:
            consents["whatsapp"] = (False, signup)
        if email is not None:
            consents["email"] = (rng.random() < 0.55, signup)
        persona = Persona(
            n=n,
            label=label,
            loyalty=loyalty,
            external_id=f"KN-{100000 + n}",
            name=name,
            phone=_phone(rng, phones),
            email=email,
            locale="en" if rng.random() < 0.15 else "id",
            birthday=birthday,
            tags=tags,
            home=home,
            joined=now,
            stops=now,
            weekly=0.0,
            weekend_factor=weekend_factor,
            favorite=fav,
            channels=channels,
            phone_style=rng.randrange(3),
            redeem_propensity=0.0 if rng.random() < 0.35 else rng.uniform(0.15, 0.6),
            saving_for=_pick(rng, SAVING_FOR),
            consents=consents,
        )
        _behaviour(rng, persona, start, now)
        out.append(persona)
    return out


# --------------------------------------------------------------------------- purchases


def _hour_picker(
    hours: dict[int, int],
) -> tuple[list[int], list[float]]:
    keys = sorted(hours)
    cum: list[float] = []
    total = 0.0
    for k in keys:
        total += hours[k]
        cum.append(total)
    return keys, cum


HOURS = {
    "weekday": _hour_picker(cat.WEEKDAY_HOURS),
    "weekend": _hour_picker(cat.WEEKEND_HOURS),
    "delivery": _hour_picker(cat.DELIVERY_HOURS),
}


def _choose_item(rng: random.Random, items: Sequence[cat.Item]) -> cat.Item:
    return rng.choices(items, weights=[i.weight for i in items])[0]


def _basket(rng: random.Random, p: Persona, channel: str, hour: int) -> list[tuple[cat.Item, int]]:
    if channel in ("gofood", "grabfood"):
        drinks = _pick(rng, DRINKS_DELIVERY)
    elif channel == "app":
        drinks = _pick(rng, DRINKS_APP)
    else:
        drinks = _pick(rng, DRINKS_POS)
    lines: dict[str, list[Any]] = {}

    def add(item: cat.Item, qty: int = 1) -> None:
        if item.sku in lines:
            lines[item.sku][1] += qty
        else:
            lines[item.sku] = [item, qty]

    for _ in range(drinks):
        add(p.favorite if rng.random() < 0.65 else _choose_item(rng, cat.DRINKS))
    food_odds = 0.3 + 0.1 * (drinks > 1)
    if rng.random() < food_odds:
        menu = cat.BAKERY if hour < 11 else cat.FOOD if hour < 15 else cat.SNACKS
        add(_choose_item(rng, menu), 1 if rng.random() < 0.8 else 2)
    if channel in ("pos", "app") and rng.random() < 0.015:
        add(_choose_item(rng, cat.RETAIL))
    return [(item, qty) for item, qty in lines.values()]


def _local_phone(p: Persona) -> str:
    """The number as a cashier or a delivery app would type it."""
    national = "0" + p.phone[3:]
    if p.phone_style == 0:
        return p.phone
    if p.phone_style == 1:
        return national
    return f"{national[:4]}-{national[4:8]}-{national[8:]}"


def harbolnas_day(now: datetime) -> date:
    """12.12 of the past year (Hari Belanja Online Nasional), the demo's one-day campaign."""
    today = now.astimezone(TZ).date()
    day = date(today.year, 12, 12)
    return day if day <= today else date(today.year - 1, 12, 12)


def _on_break(p: Persona, day: date) -> bool:
    return any(begin <= day <= end for begin, end in p.breaks)


def _visit_days(
    rng: random.Random, p: Persona, first: date, last: date, harbolnas: date
) -> list[tuple[date, str | None]]:
    """The local days the member buys on (a day may come twice), with a forced channel."""
    out: list[tuple[date, str | None]] = []
    if p.style in ("few", "new"):
        out.append((first, "pos"))
        if p.style == "few":
            second = first + timedelta(days=rng.randint(3, 40))
            if p.visits > 1 and second <= last:
                out.append((second, None))
            return out
        first += timedelta(days=1)  # new: then visits at its own rate
    if p.style == "routine" and p.every_days:
        day = first
        while day <= last:
            if not _on_break(p, day) and rng.random() < p.attend:
                out.append((day + timedelta(days=rng.choice((-1, 0, 0, 0, 0, 1))), None))
            day += timedelta(days=p.every_days)
        out = [(d, c) for d, c in out if first <= d <= last]
    day = first
    mean = (5 + 2 * p.weekend_factor) / 7
    while day <= last:
        weekend = day.weekday() >= 5
        if _on_break(p, day):
            day += timedelta(days=1)
            continue
        if p.style == "routine":
            planned = not p.every_days and day.weekday() in p.weekdays
            chance = p.attend if planned else p.extra
        elif p.style == "deals":
            if day == harbolnas:
                if rng.random() < 0.9:
                    out.append((day, rng.choice(("app", "gofood", "grabfood"))))
                day += timedelta(days=1)
                continue
            chance = p.attend if weekend else p.extra
        else:
            factor = (p.weekend_factor if weekend else 1.0) / mean
            if day.day >= 25 or day.day <= 3:
                factor *= 1.15  # payday (tanggal muda)
            chance = p.weekly / 7 * factor
        if rng.random() < chance:
            out.append((day, None))
        day += timedelta(days=1)
    out.sort(key=lambda v: v[0])
    return out


def make_actions(
    rng: random.Random, people: list[Persona], start: datetime, now: datetime
) -> list[Action]:
    """Every purchase, refund and review from ``start`` to ``now``, in time order."""
    actions: list[Action] = []
    latest = now - timedelta(minutes=1)
    harbolnas = harbolnas_day(now)
    seq = 0
    for p in people:
        first = max(p.joined, start).astimezone(TZ).date()
        last = p.stops.astimezone(TZ).date()
        bought: list[Action] = []
        for i, (day, forced) in enumerate(_visit_days(rng, p, first, last, harbolnas)):
            weekend = day.weekday() >= 5
            channel = forced or _pick(rng, p.channels)
            if i == 0 and p.style in ("few", "new"):
                # Enrolled at the till, then the first order.
                local = (p.joined + timedelta(minutes=rng.uniform(1, 6))).astimezone(TZ)
                local = local.replace(microsecond=0)
            else:
                table = (
                    "delivery"
                    if channel in ("gofood", "grabfood")
                    else ("weekend" if weekend else "weekday")
                )
                keys, cum = HOURS[table]
                hour = rng.choices(keys, cum_weights=cum)[0]
                local = datetime(
                    day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60),
                    tzinfo=TZ,
                )  # fmt: skip
            at = as_utc(local)
            if at < p.joined or at < start or at > p.stops or at > latest:
                continue
            seq += 1
            actions.append(_purchase(rng, p, channel, local, at, seq))
            bought.append(actions[-1])
            refund = _refund(rng, p, actions[-1], latest)
            if refund is not None:
                seq += 1
                refund.seq = seq
                actions.append(refund)
        for visit in rng.sample(bought, k=min(p.reviews, len(bought))):
            review = _review(rng, p, visit, latest)
            if review is not None:
                seq += 1
                review.seq = seq
                actions.append(review)
    actions.sort()
    return actions


def _review(rng: random.Random, p: Persona, visit: Action, latest: datetime) -> Action | None:
    """A review in the app a few hours after a visit (review.submitted, with a rating)."""
    at = visit.at + timedelta(seconds=rng.randrange(20 * 60, 30 * 3600))
    if at > latest:
        return None
    if p.loyalty == "emotional":
        rating = 5 if rng.random() < 0.75 else 4
    else:
        rating = _pick(rng, ((5, 45), (4, 40), (3, 15)))
    data: dict[str, Any] = {
        "type": "review.submitted",
        "occurred_at": at.astimezone(TZ).isoformat(),
        "member": {"external_id": p.external_id},
        "store": visit.data["store"],
        "channel": "app",
        "attributes": {"rating": rating, "comment": rng.choice(REVIEW_TEXTS[rating])},
    }
    return Action(at=at, persona=p.n, seq=0, kind="review", data=data)


def _purchase(
    rng: random.Random, p: Persona, channel: str, local: datetime, at: datetime, seq: int
) -> Action:
    roll = rng.random()
    store = p.home
    if roll > 0.8:
        same_city = [s for s in cat.STORES if s.city == p.home.city and s != p.home]
        store = rng.choice(same_city if roll < 0.95 else cat.STORES)
    lines = _basket(rng, p, channel, local.hour)
    total = sum(item.price * qty for item, qty in lines)
    member = {"external_id": p.external_id} if channel == "app" else {"phone": _local_phone(p)}
    data = {
        "type": "purchase",
        "occurred_at": local.isoformat(),
        "member": member,
        "amount": str(total),
        "currency": "IDR",
        "items": [
            {
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "brand": cat.BRAND,
                "quantity": qty,
                "unit_price": str(item.price),
            }
            for item, qty in lines
        ],
        "store": store.code,
        "channel": channel,
        "payment_method": _pick(rng, cat.PAYMENTS[channel]),
    }
    return Action(at=at, persona=p.n, seq=seq, kind="purchase", data=data)


def _refund(rng: random.Random, p: Persona, purchase: Action, latest: datetime) -> Action | None:
    channel = purchase.data["channel"]
    odds = {"pos": 0.012, "app": 0.02, "gofood": 0.035, "grabfood": 0.035}[channel]
    if rng.random() >= odds:
        return None
    delay = {
        "pos": timedelta(minutes=rng.uniform(3, 45)),
        "app": timedelta(minutes=rng.uniform(10, 24 * 60)),
    }.get(channel, timedelta(minutes=rng.uniform(15, 120)))
    at = min(purchase.at + delay, latest)
    if at <= purchase.at:
        return None
    items = purchase.data["items"]
    units = sum(i["quantity"] for i in items)
    data: dict[str, Any] = {
        "type": "refund",
        "occurred_at": at.astimezone(TZ).isoformat(),
        "member": purchase.data["member"],
        "store": purchase.data["store"],
        "channel": channel,
        "attributes": {"reason": rng.choice(cat.REFUND_REASONS[channel])},
    }
    if units > 1 and rng.random() < 0.45:
        line = rng.choice(items)
        data["returned_items"] = [{"sku": line["sku"], "quantity": 1}]
    else:
        data["amount"] = purchase.data["amount"]
    return Action(at=at, persona=p.n, seq=0, kind="refund", data=data)


def number_events(actions: list[Action]) -> list[dict[str, Any]]:
    """Give each event its id (``demo-N`` in time order) and each order its order id."""
    per_store_day: Counter[tuple[str, str]] = Counter()
    order_of: dict[int, str] = {}
    events = []
    shorts = {s.code: s.short for s in cat.STORES}
    for n, action in enumerate(actions, start=1):
        data = dict(action.data)
        data["id"] = f"demo-{n}"
        if action.kind == "purchase":
            channel = data["channel"]
            if channel == "pos":
                day = data["occurred_at"][:10].replace("-", "")
                per_store_day[(data["store"], day)] += 1
                k = per_store_day[(data["store"], day)]
                order_id = f"{shorts[data['store']]}-{day}-{k:04d}"
            else:
                prefix = {"app": "APP", "gofood": "GF", "grabfood": "GRB"}[channel]
                order_id = f"{prefix}-{n:08d}"
            data["order_id"] = order_id
            order_of[action.seq] = order_id
        elif action.kind == "refund":
            data["order_id"] = order_of[action.seq - 1]
        events.append(data)
    return events


# --------------------------------------------------------------------------- replay


def _windows(start: datetime, now: datetime) -> list[datetime]:
    """Window boundaries: every Monday and every first of the month, midnight in Jakarta."""
    local = start.astimezone(TZ)
    day = local.date()
    bounds = [start]
    while True:
        day += timedelta(days=1)
        if day.weekday() == 0 or day.day == 1:
            edge = as_utc(datetime(day.year, day.month, day.day, tzinfo=TZ))
            if edge >= now:
                break
            bounds.append(edge)
    bounds.append(now + timedelta(seconds=1))
    return bounds


def _available(
    session: Session, program_id: uuid.UUID, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(
            Account.member_id,
            Account.credits_posted - Account.debits_posted - Account.debits_pending,
        ).where(
            Account.program_id == program_id,
            Account.code == POINTS,
            Account.member_id.in_(member_ids),
        )
    ).all()
    return {r[0]: int(r[1]) for r in rows if r[0] is not None}


def _redeem(
    db: Database,
    rng: random.Random,
    program_id: uuid.UUID,
    revision: int,
    people: dict[int, Persona],
    visits: dict[int, tuple[datetime, str]],
    window_end: datetime,
    totals: Totals,
) -> None:
    """Some members who visited this window spend points on a reward at their last visit."""
    wanting = [n for n in sorted(visits) if rng.random() < people[n].redeem_propensity]
    if not wanting:
        return
    with db.session() as s:
        ids = [people[n].member_id for n in wanting]
        balances = _available(s, program_id, [i for i in ids if i is not None])
        for n in wanting:
            member_id = people[n].member_id
            assert member_id is not None
            have = balances.get(member_id, 0)
            if have < people[n].saving_for:
                continue
            last_visit, store = visits[n]
            at = min(last_visit + timedelta(minutes=2), window_end - timedelta(seconds=1))
            # less what expired since the week's job ran (the spend expires it first)
            ledger.set_clock(s, at)
            have = queries.spendable(s, program_id, member_id, now=at)
            if have < people[n].saving_for:
                continue
            affordable = [r for r in cat.REWARDS if r.points <= have]
            goal = [r for r in affordable if r.points == people[n].saving_for]
            reward = goal[0] if goal and rng.random() < 0.8 else rng.choice(affordable)
            k = totals.redemptions + 1
            ctx = ledger.Context(
                program_id=program_id,
                idempotency_key=f"demo:redeem:{k}",
                request_hash=ledger.request_hash({"demo_redeem": k, "points": reward.points}),
                source_type="redemption",
                source_id=f"RDM-{k:06d}",
                actor="demo",
                reason=reward.name,
                program_revision=revision,
                effective_at=at,
                details={"reward": reward.sku, "store": store},
            )
            ledger.spend(s, ctx, member_id=member_id, amount=reward.points)
            totals.redemptions += 1
            totals.points_redeemed += reward.points
            totals.rewards[reward.sku] += 1


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        yield bar


def build_demo(
    db: Database, *, members: int = 2000, seed: int = 7, progress: bool = False
) -> dict[str, Any]:
    """Create the "Kopi Nusantara" tenant with ``members`` members and a year of history.

    The database must be migrated. Returns a summary with the admin API key (shown once).
    """
    if members < 1:
        raise ValueError("members must be at least 1")
    started, cpu_started = time.perf_counter(), time.process_time()
    phases: dict[str, float] = defaultdict(float)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now_ = time.perf_counter()
        phases[name] += now_ - clock
        clock = now_

    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    start = add_months(now, -12)
    people = make_personas(rng, members, start, now)
    actions = make_actions(rng, people, start, now)
    events = number_events(actions)
    by_n = {p.n: p for p in people}
    lap("generate")

    with db.session() as s:
        new = tenants.create_tenant(
            s,
            name=cat.TENANT_NAME,
            country="ID",
            currency="IDR",
            timezone=TZ_NAME,
            locale="id",
            points_name="Poin",
        )
        program = programs.update_program(s, new.program, dict(PROGRAM_SETTINGS), actor="demo")
        _demo_rules(s, program, now)
        demo_tiers.create_tiers(s, new.tenant, program)
        tenant_id, program_id, revision = new.tenant.id, program.id, program.revision
        api_key, api_key_id = new.secret, new.key.id
        s.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id)
            .values(created_at=start - timedelta(days=600))
        )

    totals = Totals()
    with _progress(progress) as bar:
        task = bar.add_task("Enrolling members", total=len(people)) if bar else None
        for i in range(0, len(people), CHUNK):
            with db.session() as s:
                tenant = tenants.get_tenant(s, tenant_id)
                for p in people[i : i + CHUNK]:
                    _enrol(s, tenant, p)
            if bar:
                bar.advance(task, len(people[i : i + CHUNK]))
        lap("members")
        # Badges and the monthly challenge exist before the history is replayed, so progress,
        # completions and their rewards happen when the events do (and expire on time with
        # the windowed due work), as in a shop that has run them all year.
        with db.session() as s:
            tenant = tenants.get_tenant(s, tenant_id)
            demo_program = s.get(Program, program_id)
            assert demo_program is not None
            badges_summary = seed_badges(s, tenant, demo_program, recognition_rule=False)
            s.commit()
        lap("badges")

        bounds = _windows(start, now)
        task = bar.add_task("Replaying the year", total=len(events)) if bar else None
        with db.session() as s:
            tenant = tenants.get_tenant(s, tenant_id)
        pos = 0
        for w_start, w_end in itertools.pairwise(bounds):
            due = run_due(db, now=w_start, analytics=False)
            if due.errors:
                raise DemoError(f"due work as of {w_start} failed: {due.errors[:3]}")
            lap("jobs")
            window: list[dict[str, Any]] = []
            visits: dict[int, tuple[datetime, str]] = {}
            while pos < len(events) and actions[pos].at < w_end:
                window.append(events[pos])
                if actions[pos].kind == "purchase":
                    visits[actions[pos].persona] = (actions[pos].at, events[pos]["store"])
                pos += 1
            for j in range(0, len(window), CHUNK):
                chunk = window[j : j + CHUNK]
                with db.session() as s:
                    # replayed as of the week's due work: what expired by then is expired
                    ledger.set_clock(s, w_start)
                    out = record_batch(s, tenant, chunk)
                if out.failed:
                    bad = next(r for r in out.results if r.error is not None)
                    raise DemoError(f"event {chunk[bad.index]['id']} was refused: {bad.error}")
                for e in chunk:
                    if e["type"] == "purchase":
                        totals.purchases += 1
                    elif e["type"] == "refund":
                        totals.refunds += 1
                    else:
                        totals.reviews += 1
                if bar:
                    bar.advance(task, len(chunk))
            lap("events")
            _redeem(db, rng, program_id, revision, by_n, visits, w_end, totals)
            lap("redemptions")
        jobs = bar.add_task("Due work (today)", total=1) if bar else None
        report = run_due(db)
        if bar:
            bar.advance(jobs, 1)
        lap("jobs")
    if report.errors:
        raise DemoError(f"due work failed: {report.errors[:3]}")
    with db.session() as s:
        tenant = tenants.get_tenant(s, tenant_id)
        demo_program = s.get(Program, program_id)
        assert demo_program is not None
        demo_tiers.appoint_ambassadors(s, tenant, demo_program, now.astimezone(TZ).date())
        member_ids = list(
            s.execute(
                select(Member.id).where(Member.tenant_id == tenant_id).order_by(Member.id)
            ).scalars()
        )
        memberships = seed_memberships(s, tenant, demo_program, member_ids, rng, now)
        s.commit()
    lap("tiers and memberships")
    with db.session() as s:
        tenant = tenants.get_tenant(s, tenant_id)
        demo_program = s.get(Program, program_id)
        assert demo_program is not None
        catalog = seed_catalog(s, tenant, demo_program, member_ids, rng, now)
        s.commit()
    lap("rewards catalog")
    with db.session() as s:
        tenant = tenants.get_tenant(s, tenant_id)
        demo_program = s.get(Program, program_id)
        assert demo_program is not None
        referral_summary = seed_referrals(s, tenant, demo_program, rng, now)
        demo_badges.add_recognition_rule(s, demo_program)
        s.commit()
    lap("referrals")
    # The subscriptions' backdated bonus points include some already past their expiry:
    # one more pass of due work leaves nothing overdue, as a running worker would.
    report = run_due(db)
    if report.errors:
        raise DemoError(f"due work failed: {report.errors[:3]}")
    lap("jobs")

    with db.session() as s:
        summary = _summary(s, program_id)
        summary["tiers"] = demo_tiers.counts(s, tenants.get_tenant(s, tenant_id), program_id)
        summary["paid_memberships"] = memberships
        summary["catalog"] = catalog
        summary["referrals"] = referral_summary
        summary["badges"] = {
            **badges_summary,
            "completions": demo_badges.completions(s, program_id),
        }
        console_users = demo_web.ensure_console_users(s, tenant_id)
        portal = demo_web.portal_member(s, tenant_id)
    return {
        "console_users": console_users,
        "portal_member": portal,
        "tenant": cat.TENANT_NAME,
        "tenant_id": str(tenant_id),
        "program": cat.PROGRAM_NAME,
        "program_id": str(program_id),
        "api_key_id": str(api_key_id),
        "api_key": api_key,
        "members": len(people),
        "personas": dict(sorted(Counter(p.segment for p in people).items())),
        "events": len(events),
        "purchases": totals.purchases,
        "refunds": totals.refunds,
        "reviews": totals.reviews,
        "redemptions": totals.redemptions,
        "rewards": dict(totals.rewards),
        "history_from": start.astimezone(TZ).isoformat(),
        "history_to": now.astimezone(TZ).isoformat(),
        **summary,
        "build_seconds": round(time.perf_counter() - started, 1),
        "build_cpu_seconds": round(time.process_time() - cpu_started, 1),
        "build_phases_seconds": {k: round(v, 1) for k, v in phases.items()},
    }


def _demo_rules(session: Session, program: Program, now: datetime) -> None:
    """A realistic rule set and one campaign (Harbolnas 12.12 of the past year)."""
    from setia.rules import service as rules
    from setia.rules.schemas import CampaignBody, RuleBody

    h = harbolnas_day(now)
    day = datetime(h.year, h.month, h.day, tzinfo=TZ)
    harbolnas = rules.create_campaign(
        session,
        program,
        CampaignBody(
            name="Harbolnas 12.12",
            description="Hari Belanja Online Nasional: 3× poin untuk pesanan online",
            schedule={"active_from": day, "active_to": day + timedelta(days=1)},
            budget_points=150_000,
        ),
        actor="demo",
    )
    for body in (
        {
            "name": "Akhir pekan 2× poin",
            "triggers": ["purchase"],
            "conditions": {"field": "event.local_day_of_week", "op": "in", "value": ["sat", "sun"]},
            "effect": {"type": "multiplier", "factor": "2"},
            "limits": [{"period": "month", "max_points": 500}],
        },
        {
            "name": "Es Kopi Pandan 3×",
            "description": "Menu baru: 3× poin untuk Es Kopi Pandan",
            "triggers": ["purchase"],
            "conditions": {
                "items": {"where": {"field": "item.sku", "op": "eq", "value": "ES-KOPI-PANDAN"}}
            },
            "effect": {
                "type": "per_amount",
                "points": 2,
                "per": "1000",
                "scope": "items",
                "items_where": {"field": "item.sku", "op": "eq", "value": "ES-KOPI-PANDAN"},
            },
        },
        {
            "name": "Harbolnas 3× online",
            "triggers": ["purchase"],
            "campaign_id": str(harbolnas.id),
            "conditions": {
                "field": "event.channel",
                "op": "in",
                "value": ["app", "gofood", "grabfood"],
            },
            "effect": {"type": "multiplier", "factor": "3"},
            "limits": [{"period": "day", "max_points": 1000}],
        },
        {
            "name": "Bonus pendaftaran",
            "triggers": ["member.signup"],
            "effect": {"type": "fixed", "points": 100},
        },
        {
            "name": "Bonus ulang tahun",
            "triggers": ["schedule.birthday"],
            "effect": {"type": "fixed", "points": 250},
        },
        {
            "name": "Ulasan pertama",
            "triggers": ["review.submitted"],
            "effect": {"type": "fixed", "points": 50},
            "limits": [{"period": "lifetime", "max_count": 1}],
        },
    ):
        rules.create_rule(session, program, RuleBody.model_validate(body), actor="demo")
    rules.create_rule(session, program, RuleBody.model_validate(demo_tiers.TIER_RULE), actor="demo")


def _enrol(session: Session, tenant: Tenant, p: Persona) -> None:
    member = members.create_member(
        session,
        tenant,
        {
            "external_id": p.external_id,
            "name": p.name,
            "phone": p.phone,
            "email": p.email,
            "locale": p.locale,
            "birthday": p.birthday,
            "tags": p.tags,
            "attributes": {
                "home_store": p.home.code,
                # The ground truth of setia analytics evaluate-demo (labels.py never reads it).
                "demo_persona": {"label": p.label, "loyalty_type": p.loyalty},
            },
        },
        source="demo",
    )
    member.created_at = member.updated_at = p.joined
    # The signup bonus, dated the day the member joined (as the API would have given it).
    from setia.events.service import member_signed_up

    member_signed_up(session, tenant, member)
    for channel, (granted, source) in p.consents.items():
        change = members.set_consent(session, member, channel, granted, source=source)
        change.changed_at = p.joined
    p.member_id = member.id


def _summary(session: Session, program_id: uuid.UUID) -> dict[str, Any]:
    by_code: dict[str, int] = defaultdict(int)
    for code, total in session.execute(
        select(Transfer.code, func.sum(Transfer.amount))
        .where(Transfer.program_id == program_id, Transfer.kind == "POSTED")
        .group_by(Transfer.code)
    ).all():
        by_code[code] = int(total or 0)
    accounts = dict(
        session.execute(
            select(
                Account.code,
                func.sum(Account.credits_posted - Account.debits_posted),
            )
            .where(Account.program_id == program_id, Account.member_id.is_not(None))
            .group_by(Account.code)
        ).all()
    )
    cost = PROGRAM_SETTINGS["cost_per_point"]
    outstanding = queries.liability(session, program_id)
    return {
        "points_issued": by_code["EARN"],
        "points_reversed": by_code["REVERSAL"],
        "points_redeemed": by_code["REDEEM"],
        "points_expired": by_code["EXPIRE"],
        "points_available": int(accounts.get("POINTS") or 0),
        "points_pending": int(accounts.get("PENDING") or 0),
        "points_debt": -int(accounts.get("DEBT") or 0),
        "points_outstanding": outstanding,
        "liability": f"{outstanding * cost:.0f}",
        "liability_currency": "IDR",
    }


# --------------------------------------------------------------------------- re-running


def find_demo_tenant(db: Database) -> uuid.UUID | None:
    """The demo tenant's id, if the database already has one."""
    if "tenants" not in inspect(db.engine).get_table_names():
        return None
    with db.session() as s:
        found: uuid.UUID | None = s.execute(
            select(Tenant.id).where(Tenant.name == cat.TENANT_NAME).order_by(Tenant.id).limit(1)
        ).scalar_one_or_none()
    return found


def other_tenants(db: Database) -> list[str]:
    """Names of tenants that are not the demo's: --fresh refuses to delete those."""
    if "tenants" not in inspect(db.engine).get_table_names():
        return []
    with db.session() as s:
        return list(
            s.execute(
                select(Tenant.name).where(Tenant.name != cat.TENANT_NAME).order_by(Tenant.name)
            ).scalars()
        )


def reuse_demo(db: Database, tenant_id: uuid.UUID) -> dict[str, Any]:
    """Summary of an existing demo tenant, with a newly issued admin API key.

    Keys are stored as digests, so the first key cannot be shown again; a new one is issued.
    """
    with db.session() as s:
        key, secret = tenants.create_key(s, tenant_id, scope="admin", name="demo (re-run)")
        program = programs.get_program(s, tenant_id, None)
        n_members = s.execute(
            select(func.count()).select_from(Member).where(Member.tenant_id == tenant_id)
        ).scalar_one()
        n_events = s.execute(
            select(func.count()).select_from(Event).where(Event.tenant_id == tenant_id)
        ).scalar_one()
        summary = _summary(s, program.id)
        console_users = demo_web.ensure_console_users(s, tenant_id)
        portal = demo_web.portal_member(s, tenant_id)
        return {
            "console_users": console_users,
            "portal_member": portal,
            "tenant": cat.TENANT_NAME,
            "tenant_id": str(tenant_id),
            "program": program.name,
            "program_id": str(program.id),
            "api_key_id": str(key.id),
            "api_key": secret,
            "members": int(n_members),
            "events": int(n_events),
            **summary,
            "reused": True,
        }
