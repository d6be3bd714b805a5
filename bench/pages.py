"""Render time of every console and portal page for the demo tenant (target: median under
300 ms per page), with the ratio to a static file of the same app.

What it does:

* **data**: builds the "Kopi Nusantara" demo (``setia.demo.generate.build_demo``, default
  2,000 members and a year of history) in a fresh SQLite file in a temporary directory,
  or, with ``--db URL``, uses the demo tenant already in that database (building it there
  only if it has none; the database is migrated first).
* **sessions**: signs in as the demo owner and as the demo portal member by creating their
  sessions directly (``setia.web.security.start_session``; no password check, no form), the
  cookies a browser would send.
* **pages**: every GET route of the app under ``/console`` and ``/portal``, found by walking
  the app's routes at run time (so pages added later are measured without editing this
  file). Routes with path parameters are filled with ids and codes picked from the demo
  data by the path segment before the parameter (``/console/members/{member_id}`` gets the
  demo portal member, ``/console/rewards/{code}`` a reward, ``/portal/{tenant_id}/...`` the
  demo tenant, ...); a route for which no value answers is listed as skipped. Downloads
  (paths with ``export`` or ``download``) are not pages and are skipped. A few URLs with
  query strings are added: a member search by phone, the dashboard over 365 days.
* **timing**: in-process through FastAPI's ``TestClient`` (the whole app: middleware,
  session lookup, the services' queries, template rendering), ``--repeat`` rounds (default
  20) after two warm-up rounds, every page once per round in turn, so drift hits all pages
  alike. Reported per page: status, median and p95 in ms, the median's ratio to
  ``GET /static/web/setia.css`` (a static file of the same app, the floor of a request)
  measured in the same rounds (``GET /healthz`` is shown too), and the first request's time
  (``first ms``: cold caches, e.g. the dashboard's period figures, which are kept until
  the next order or ledger transfer).
* **verdict**: exit status 1 when any page's median is over ``--budget`` ms (default 300),
  2 when a page answered 5xx.

    python bench/pages.py
    python bench/pages.py --members 500 --repeat 10
    python bench/pages.py --db sqlite:////tmp/demo.db      # reuse a demo database
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from setia.app import create_app
from setia.core.db import Database
from setia.core.migrate import upgrade
from setia.demo import web as demo_web
from setia.demo.generate import build_demo, find_demo_tenant
from setia.members.models import Member
from setia.web import security
from setia.web.deps import MEMBER_COOKIE, STAFF_COOKIE
from setia.web.models import StaffUser

STATIC = "/static/web/setia.css"
HEALTH = "/healthz"
PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
SKIP_WORDS = ("export", "download")


# --- the app's GET routes ---------------------------------------------------------------------


def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route, including those of included routers (FastAPI keeps
    an included router as one entry whose ``original_router`` holds its routes)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            ctx = getattr(route, "include_context", None)
            yield from walk(list(inner.routes), prefix + str(getattr(ctx, "prefix", "") or ""))
            continue
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if path is not None and methods:
            yield prefix + path, set(methods)


def web_get_routes(app: Any) -> list[str]:
    found = {
        path
        for path, methods in walk(list(app.routes))
        if "GET" in methods and path.startswith(("/console", "/portal"))
    }
    return sorted(found)


# --- ids from the demo data -------------------------------------------------------------------


@dataclass
class Demo:
    tenant_id: uuid.UUID
    program_id: uuid.UUID
    owner_id: uuid.UUID
    member_id: uuid.UUID
    member_phone: str | None
    # path segment -> candidate values (ids and codes), tried in order
    values: dict[str, list[str]] = field(default_factory=dict)


def _first(session: Session, model: Any, tenant_id: uuid.UUID, program_id: uuid.UUID) -> Any:
    q = select(model)
    cols = inspect(model).columns
    if "tenant_id" in cols:
        q = q.where(cols["tenant_id"] == tenant_id)
    elif "program_id" in cols:
        q = q.where(cols["program_id"] == program_id)
    else:
        return None
    return session.scalars(q.order_by(cols["id"]).limit(1)).first() if "id" in cols else None


def _sources() -> dict[str, list[Any]]:
    """Path segment -> the models whose rows such a page shows."""
    from setia.analytics.tables import AnalyticsSegment
    from setia.badges.models import BadgeDefinition
    from setia.causes.models import Cause, Donation
    from setia.coupons.models import CouponCampaign
    from setia.memberships.models import MembershipPlan, Subscription
    from setia.programs.models import Program
    from setia.referrals.models import Referral
    from setia.rewards.models import Reward, RewardRedemption
    from setia.rules.models import Campaign, Rule
    from setia.tenants.models import ApiKey
    from setia.tiers.models import TierSet

    return {
        "rules": [Rule],
        "campaigns": [Campaign, CouponCampaign],
        "coupons": [CouponCampaign],
        "coupon-campaigns": [CouponCampaign],
        "tiers": [TierSet],
        "tier-sets": [TierSet],
        "plans": [MembershipPlan],
        "memberships": [MembershipPlan, Subscription],
        "subscriptions": [Subscription],
        "rewards": [Reward],
        "redemptions": [RewardRedemption],
        "causes": [Cause],
        "donations": [Donation],
        "badges": [BadgeDefinition],
        "challenges": [BadgeDefinition],
        "referrals": [Referral],
        "segments": [AnalyticsSegment],
        "keys": [ApiKey],
        "api-keys": [ApiKey],
        "programs": [Program],
    }


def demo_ids(db: Database, tenant_id: uuid.UUID) -> Demo:
    from setia.programs import service as programs

    with db.session() as s:
        program = programs.get_program(s, tenant_id, None)
        owner = s.scalars(
            select(StaffUser).where(StaffUser.tenant_id == tenant_id, StaffUser.role == "owner")
        ).first()
        if owner is None:
            demo_web.ensure_console_users(s, tenant_id)
            s.commit()
            owner = s.scalars(
                select(StaffUser).where(StaffUser.tenant_id == tenant_id, StaffUser.role == "owner")
            ).first()
        assert owner is not None
        portal = demo_web.portal_member(s, tenant_id)
        if portal is None:
            raise SystemExit("the demo tenant has no member with a phone number")
        member = s.get(Member, uuid.UUID(portal["member_id"]))
        assert member is not None
        demo = Demo(tenant_id, program.id, owner.id, member.id, member.phone)
        for segment, models in _sources().items():
            values: list[str] = []
            for model in models:
                row = _first(s, model, tenant_id, program.id)
                if row is None:
                    continue
                values.append(str(row.id))
                for attr in ("code", "key"):
                    value = getattr(row, attr, None)
                    if isinstance(value, str):
                        values.append(value)
            demo.values[segment] = values
        staff = s.scalars(select(StaffUser.id).where(StaffUser.tenant_id == tenant_id)).all()
        demo.values["staff"] = demo.values["users"] = [str(i) for i in staff]
        demo.values["members"] = [str(member.id)]
        from setia.rewards.models import RewardRedemption

        mine = s.scalars(
            select(RewardRedemption.id)
            .where(RewardRedemption.member_id == member.id)
            .order_by(RewardRedemption.id.desc())
            .limit(1)
        ).first()
        demo.values["my-rewards"] = [str(mine)] if mine else []
        from setia.tiers import service as tier_service

        structure = tier_service.structure(s, program.id)
        if structure is not None and structure.tiers:
            top = structure.tiers[-1]
            demo.values["tier"] = demo.values["tiers"] = [top.code, str(top.id)]
    return demo


def candidates(path: str, demo: Demo) -> list[str]:
    """Concrete URLs for a route path (several when the right value is not known for sure);
    empty when a parameter cannot be filled."""
    urls = [""]
    pos = 0
    for match in PARAM.finditer(path):
        literal = path[pos : match.start()]
        name = match.group(1)
        before = [p for p in literal.split("/") if p] or [
            p for p in path[: match.start()].split("/") if p
        ]
        segment = before[-1] if before else ""
        if name == "tenant_id":
            values = [str(demo.tenant_id)]
        elif name == "program_id":
            values = [str(demo.program_id)]
        elif name == "member_id" or segment == "members":
            values = [str(demo.member_id)]
        else:
            values = list(demo.values.get(segment, []))
            if name.endswith("id"):
                values.sort(key=lambda v: 0 if _is_uuid(v) else 1)
            else:
                values.sort(key=lambda v: 1 if _is_uuid(v) else 0)
        if not values:
            return []
        urls = [u + literal + v for u in urls for v in values][:6]
        pos = match.end()
    return [u + path[pos:] for u in urls]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- sessions and timing ----------------------------------------------------------------------


def start_sessions(db: Database, demo: Demo) -> tuple[str, str]:
    with db.session() as s:
        staff = security.start_session(
            s, kind="staff", tenant_id=demo.tenant_id, staff_user_id=demo.owner_id, locale="id"
        )
        member = security.start_session(
            s, kind="member", tenant_id=demo.tenant_id, member_id=demo.member_id, locale="id"
        )
        s.commit()
        return staff.token, member.token


def ensure_segment(db: Database, demo: Demo) -> uuid.UUID | None:
    """A saved segment for the segment page, when the demo has none (removed at the end)."""
    from setia.analytics import segments as seg_service

    with db.session() as s:
        if seg_service.list_segments(s, demo.tenant_id, after=None, limit=1):
            return None
        seg, _ = seg_service.create(
            s,
            demo.tenant_id,
            seg_service.SegmentDoc(
                key="bench-pages-at-risk",
                names={"en": "At risk (bench)"},
                descriptions={},
                filter={"field": "rfm_segment", "op": "in", "value": ["at_risk", "cant_lose_them"]},
                program_id=demo.program_id,
            ),
            actor="bench",
        )
        s.commit()
        demo.values["segments"] = [str(seg.id), seg.key]
        return seg.id


def drop_segment(db: Database, tenant_id: uuid.UUID, segment_id: uuid.UUID | None) -> None:
    if segment_id is None:
        return
    from setia.analytics import segments as seg_service

    with db.session() as s:
        seg_service.remove(s, tenant_id, segment_id)
        s.commit()


def pct(samples: list[float], q: int) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def resolve(client: TestClient, urls: list[str]) -> tuple[str | None, int | None]:
    """The first of ``urls`` that answers below 400 (else the first one and its status)."""
    first: tuple[str | None, int | None] = (None, None)
    for url in urls:
        status = client.get(url, follow_redirects=False).status_code
        if status < 400:
            return url, status
        if first[0] is None:
            first = (url, status)
    return first


def measure(
    db: Database, demo: Demo, repeat: int
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    staff_token, member_token = start_sessions(db, demo)
    app = create_app(db)
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    with TestClient(app) as console, TestClient(app) as portal:
        console.cookies.set(STAFF_COOKIE, staff_token)
        portal.cookies.set(MEMBER_COOKIE, member_token)
        pages: list[tuple[str, str, TestClient]] = []  # (label, url, client)
        for path in web_get_routes(app):
            client = portal if path.startswith("/portal") else console
            if any(word in path for word in SKIP_WORDS):
                skipped.append((path, "a download, not a page"))
                continue
            if "{" not in path:
                pages.append((path, path, client))
                continue
            if "{token}" in path:
                skipped.append((path, "a one-time link (invite or reset token)"))
                continue
            urls = candidates(path, demo)
            if not urls:
                skipped.append((path, "no id of this kind in the demo data"))
                continue
            url, status = resolve(client, urls)
            if url is None or status is None:
                skipped.append((path, "no id of this kind in the demo data"))
                continue
            if status >= 400:
                skipped.append((path, f"{url} answered {status}"))
                continue
            pages.append((path, url, client))
        if demo.member_phone:
            pages.append(
                ("/console/members?q=<phone>", f"/console/members?q={demo.member_phone}", console)
            )
        pages.append(("/console?period=365", "/console?period=365", console))
        baseline = [("static " + STATIC, STATIC, console), ("GET " + HEALTH, HEALTH, console)]
        everything = baseline + pages
        times: dict[str, list[float]] = {label: [] for label, _, _ in everything}
        answered: dict[str, int] = {}
        first: dict[str, float] = {}
        for round_ in range(repeat + 2):
            for label, url, client in everything:
                started = time.perf_counter()
                r = client.get(url, follow_redirects=False)
                took = time.perf_counter() - started
                answered[label] = r.status_code
                if round_ == 0:
                    first[label] = took * 1000
                if round_ >= 2:
                    times[label].append(took * 1000)
        floor = statistics.median(times[baseline[0][0]])
        for label, url, _ in everything:
            samples = times[label]
            med = statistics.median(samples)
            rows.append(
                {
                    "page": label,
                    "url": url,
                    "status": answered[label],
                    "median": med,
                    "p95": pct(samples, 95),
                    "first": first[label],
                    "ratio": med / floor if floor else float("nan"),
                    "baseline": label in {b[0] for b in baseline},
                }
            )
    return rows, skipped


def report(rows: list[dict[str, Any]], skipped: list[tuple[str, str]], budget: float) -> int:
    width = max(len(r["page"]) for r in rows)
    print(f"\n{'page':{width}}  status  median ms   p95 ms  x static  first ms")
    for r in rows:
        flag = ""
        if not r["baseline"] and r["median"] > budget:
            flag = "  OVER BUDGET"
        if r["status"] >= 500:
            flag = "  SERVER ERROR"
        print(
            f"{r['page']:{width}}  {r['status']:6}  {r['median']:9.1f}  {r['p95']:7.1f}  "
            f"{r['ratio']:8.1f}  {r['first']:8.1f}{flag}"
        )
    for path, why in skipped:
        print(f"skipped {path}: {why}")
    pages = [r for r in rows if not r["baseline"]]
    over = [r for r in pages if r["median"] > budget]
    errors = [r for r in pages if r["status"] >= 500]
    worst = max(pages, key=lambda r: r["median"])
    print(
        f"\n{len(pages)} pages; slowest {worst['page']} at {worst['median']:.1f} ms median "
        f"({worst['ratio']:.1f}x the static file); budget {budget:.0f} ms: "
        + ("met" if not over else f"{len(over)} over")
    )
    if errors:
        print(f"{len(errors)} pages answered 5xx: " + ", ".join(r["page"] for r in errors))
        return 2
    return 1 if over else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2000, help="demo members to build")
    parser.add_argument("--repeat", "-n", type=int, default=20, help="timed rounds per page")
    parser.add_argument("--budget", type=float, default=300.0, help="median limit per page, ms")
    parser.add_argument(
        "--db",
        help="database URL with (or for) the demo tenant; default: a temporary SQLite file",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the app's error log (tracebacks of 5xx)"
    )
    args = parser.parse_args()
    if not args.verbose:  # a 5xx page is reported in the table; its traceback with --verbose
        logging.getLogger("setia").setLevel(logging.CRITICAL)
    print(
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} cpus, {platform.machine()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'pages.db'}"
        upgrade(url)
        db = Database(url)
        try:
            tenant_id = find_demo_tenant(db)
            if tenant_id is None:
                print(f"building the demo ({args.members:,} members, a year of history)...")
                started = time.perf_counter()
                summary = build_demo(db, members=args.members)
                tenant_id = uuid.UUID(str(summary["tenant_id"]))
                print(f"built in {time.perf_counter() - started:.0f} s")
            demo = demo_ids(db, tenant_id)
            with db.session() as s:
                n_members = len(
                    s.scalars(select(Member.id).where(Member.tenant_id == tenant_id)).all()
                )
            print(f"demo tenant {tenant_id}: {n_members:,} members; {args.repeat} rounds")
            made = ensure_segment(db, demo)
            try:
                rows, skipped = measure(db, demo, args.repeat)
            finally:
                drop_segment(db, tenant_id, made)
        finally:
            db.dispose()
    sys.exit(report(rows, skipped, args.budget))


if __name__ == "__main__":
    main()
