"""Recording a batch of events set-based: plan in Python, write each table once.

``record_batch`` answers exactly what recording the events one by one (each in its own
savepoint, ``service.record_event``) answers, and writes the same rows. It gets there by
splitting the batch, in order, into runs of *plain* events and the rest:

* a plain event is a purchase or custom event whose client id and order id are new (in
  the database and earlier in the batch), whose fields are valid, and whose member is
  found by its identities as exactly one active member that no slower event of this batch
  has touched. Everything about it can be decided before writing: its rules are evaluated
  in Python (usage of limits and budgets read from the database and topped up with what
  earlier events of the run gave), and its ledger rows (transfer, entries with the
  accounts' versions and balances, lot) are planned from the accounts' counters read
  once, locked on PostgreSQL. A run of plain events is then written with one
  ``executemany`` per table and one guarded counter update per account.
* anything else (refunds, duplicates, unknown or ambiguous members, invalid fields,
  points that would repay a debt) goes through ``service.record_event`` in its own
  savepoint, as always, after the run before it is written; so every write happens in the
  order of the batch.

If writing a run fails anyway (a concurrent duplicate, a version that moved), the run's
savepoint is rolled back and its events are recorded one by one.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import orjson
from pydantic import ValidationError
from sqlalchemy import Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from setia.analytics import store_fields
from setia.badges import service as badges
from setia.core import bulk
from setia.core.db import new_id
from setia.core.errors import SetiaError, validation_message
from setia.core.money import MoneyError, check_currency, parse_amount, to_str
from setia.core.time import as_utc, utcnow
from setia.events import benefits, earning
from setia.events import service as events
from setia.events.models import Event, Order
from setia.events.schemas import BatchItem, BatchOut, EventIn, EventResult
from setia.ledger import service as ledger
from setia.ledger.models import DEBT, ISSUANCE, PENDING, POINTS, Account, Entry, Lot, Transfer
from setia.members import service as members
from setia.members.models import Member
from setia.outbox.models import OutboxMessage
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rules import engine as rule_engine
from setia.rules import service as rule_service
from setia.rules.models import RuleAward
from setia.tenants.models import Tenant
from setia.tiers import activity as tier_activity
from setia.tiers import service as tiers

_CHUNK = 500  # values per IN (...) list

_events, _orders, _members, _accounts = (
    cast(Table, m.__table__) for m in (Event, Order, Member, Account)
)
_INSERT_EVENTS = insert(_events)
_INSERT_ORDERS = insert(_orders)
_INSERT_TRANSFERS = insert(cast(Table, Transfer.__table__))
_INSERT_ENTRIES = insert(cast(Table, Entry.__table__))
_INSERT_LOTS = insert(cast(Table, Lot.__table__))
_INSERT_AWARDS = insert(cast(Table, RuleAward.__table__))
_INSERT_OUTBOX = insert(cast(Table, OutboxMessage.__table__))
# Each touched account once per run, checked against the version its entries were planned on.
_BUMP = (
    update(_accounts)
    .where(
        _accounts.c.id == bindparam("account_id", type_=_accounts.c.id.type),
        _accounts.c.version == bindparam("expected"),
    )
    .values(
        debits_posted=_accounts.c.debits_posted + bindparam("dp"),
        credits_posted=_accounts.c.credits_posted + bindparam("cp"),
        version=_accounts.c.version + bindparam("n"),
    )
)
_SET_ACTIVITY = update(_members).where(_members.c.id == bindparam("mid", type_=_members.c.id.type))
# The columns a run's rows give one by one, in the order of their tuples; the rest are the
# same on every row of the run (``bulk.Rows``' constants, in ``_Batch._write``).
_EVENT_COLUMNS = (
    "id",
    "member_id",
    "client_event_id",
    "type",
    "occurred_at",
    "received_at",
    "request_hash",
    "order_id",
    "currency",
    "payload",
    "result",
    "amount",
)
_ORDER_COLUMNS = (
    "id",
    "member_id",
    "order_id",
    "event_id",
    "amount",
    "currency",
    "lines",
    "points_earned",
    "occurred_at",
)
_TRANSFER_COLUMNS = (
    "id",
    "credit_account_id",
    "amount",
    "idempotency_key",
    "request_hash",
    "source_type",
    "source_id",
    "actor",
    "details",
    "effective_at",
)
_ENTRY_COLUMNS = ("id", "account_id", "transfer_id", "amount", "balance_after", "account_version")
_LOT_COLUMNS = (
    "id",
    "account_id",
    "member_id",
    "transfer_id",
    "source_type",
    "source_id",
    "amount",
    "remaining",
    "earned_at",
    "pending_until",
    "released_at",
    "expires_at",
)
_AWARD_COLUMNS = (
    "id",
    "rule_id",
    "rule_revision",
    "campaign_id",
    "member_id",
    "event_id",
    "points",
    "occurred_at",
)
_OUTBOX_COLUMNS = ("id", "topic", "payload")


def validation_problem(exc: ValidationError) -> dict[str, Any]:
    errors = [
        {"loc": list(e["loc"]), "msg": validation_message(e), "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]
    return {
        "type": "https://setia.dev/problems/validation_error",
        "title": "Invalid payload",
        "status": 422,
        "detail": "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in errors
        ),
        "code": "validation_error",
        "errors": errors,
    }


def record_one(session: Session, tenant: Tenant, index: int, event: EventIn) -> BatchItem:
    """The one-by-one path: the event in its own savepoint (one bad event spoils nothing)."""
    for attempt in range(2):
        try:
            with session.begin_nested():
                recorded = events.record_event(session, tenant, event)
            return BatchItem(
                index=index,
                status=201 if recorded.created else 200,
                result=EventResult.model_validate(recorded.result),
            )
        except SetiaError as exc:
            return BatchItem(index=index, status=exc.status, error=exc.problem())
        except IntegrityError:
            # A concurrent request recorded the same event id first; read its result.
            session.info.clear()
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


@dataclass
class _Plain:
    """A plain event, checked: what its rows need besides its rules and ledger plan."""

    created: bool
    index: int
    event: EventIn
    program: Program
    member: Member
    occurred_at: datetime
    now: datetime
    currency: str | None
    amount: Decimal | None
    lines: list[dict[str, Any]] | None
    payload: dict[str, Any]
    digest: str
    context_items: list[dict[str, Any]]  # each item as ``LineItem.model_dump()`` gives it


@dataclass
class _Usage:
    """Limits and budgets: the database's usage plus what earlier events of the run gave."""

    member: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[datetime, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    rule: dict[uuid.UUID, int] = field(default_factory=lambda: defaultdict(int))
    campaign: dict[uuid.UUID, int] = field(default_factory=lambda: defaultdict(int))

    def record(
        self, member_id: uuid.UUID, occurred_at: datetime, evaluation: rule_engine.Evaluation
    ) -> None:
        # The rows earning.record writes: one per award of a rule with an id.
        for a in evaluation.awards:
            if a.rule.id is None:
                continue
            self.member[(a.rule.id, member_id)].append((as_utc(occurred_at), a.points))
            self.rule[a.rule.id] += a.points
            if a.rule.campaign is not None:
                self.campaign[a.rule.campaign.id] += a.points


class _RunUsage:
    def __init__(self, db: rule_service.DbUsage, extra: _Usage, member_id: uuid.UUID) -> None:
        self.db, self.extra, self.member_id = db, extra, member_id

    def prepare(self, rules: list[rule_engine.RuleSpec], local: datetime) -> None:
        self.db.prepare(rules, local)

    def member_used(
        self, rule: rule_engine.RuleSpec, start: datetime | None, end: datetime | None
    ) -> tuple[int, int]:
        points, count = self.db.member_used(rule, start, end)
        if rule.id is not None:
            for at, p in self.extra.member.get((rule.id, self.member_id), ()):
                if (start is None or at >= start) and (end is None or at < end):
                    points += p
                    count += 1
        return points, count

    def rule_used(self, rule: rule_engine.RuleSpec) -> int:
        used = self.db.rule_used(rule)
        return used + (self.extra.rule.get(rule.id, 0) if rule.id is not None else 0)

    def campaign_used(self, campaign: rule_engine.CampaignSpec) -> int:
        return self.db.campaign_used(campaign) + self.extra.campaign.get(campaign.id, 0)


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


class _Batch:
    def __init__(self, session: Session, tenant: Tenant) -> None:
        self.session = session
        self.tenant = tenant
        self.pg = session.get_bind().dialect.name == "postgresql"
        self.items: dict[int, BatchItem] = {}
        self.touched: set[tuple[str, Any]] = set()  # identities a slow event may have changed
        self.run_members: set[uuid.UUID] = set()  # members of the run being gathered
        self.may_create: bool | None = None
        # Members planned runs will create, not yet written, with the identities they own.
        self.pending: dict[uuid.UUID, list[tuple[str, Any]]] = {}

    # ------------------------------------------------------------------ look-ups, in bulk

    def _existing_events(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(ids):
            found.update(
                self.session.execute(
                    select(_events.c.client_event_id).where(
                        _events.c.tenant_id == self.tenant.id,
                        _events.c.client_event_id.in_(chunk),
                    )
                ).scalars()
            )
        return found

    def _existing_orders(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(ids):
            found.update(
                self.session.execute(
                    select(_orders.c.order_id).where(
                        _orders.c.tenant_id == self.tenant.id, _orders.c.order_id.in_(chunk)
                    )
                ).scalars()
            )
        return found

    def _identities(self, event: EventIn) -> list[tuple[str, Any]] | None:
        """The identities as find_member matches them; None if one does not normalise."""
        ref = event.member
        out: list[tuple[str, Any]] = []
        try:
            if ref.id is not None:
                out.append(("id", ref.id))
            if ref.external_id is not None:
                out.append(("external_id", ref.external_id))
            if ref.phone is not None:
                out.append(("phone", members.normalize_phone(ref.phone, self.tenant.country)))
            if ref.email is not None:
                out.append(("email", members.normalize_email(ref.email)))
        except SetiaError:
            return None
        return out

    def _members(self, wanted: dict[str, set[Any]]) -> dict[tuple[str, Any], list[Member]]:
        found: dict[tuple[str, Any], list[Member]] = defaultdict(list)
        for kind, values in wanted.items():
            column = {
                "id": Member.id,
                "external_id": Member.external_id,
                "phone": Member.phone,
                "email": Member.email,
            }[kind]
            for chunk in _chunks(sorted(values, key=str)):
                rows = self.session.execute(
                    select(Member).where(Member.tenant_id == self.tenant.id, column.in_(chunk))
                ).scalars()
                for m in rows:
                    found[(kind, getattr(m, kind))].append(m)
        return found

    # ------------------------------------------------------------------ the batch

    def run(self, raw_events: list[dict[str, Any]]) -> BatchOut:
        parsed: list[tuple[int, EventIn]] = []
        for index, raw in enumerate(raw_events):
            try:
                parsed.append((index, EventIn.model_validate(raw)))
            except ValidationError as exc:
                self.items[index] = BatchItem(
                    index=index, status=422, error=validation_problem(exc)
                )
        existing = self._existing_events(list({e.id for _i, e in parsed}))
        orders = self._existing_orders(
            list({e.order_id for _i, e in parsed if e.type == "purchase" and e.order_id})
        )
        idents: dict[int, list[tuple[str, Any]] | None] = {
            i: self._identities(e) for i, e in parsed
        }
        wanted: dict[str, set[Any]] = defaultdict(set)
        for found in idents.values():
            for kind, value in found or ():
                wanted[kind].add(value)
        by_identity = self._members(wanted)

        seen_ids: set[str] = set()
        seen_orders: set[str] = set()
        run: list[_Plain] = []
        for index, event in parsed:
            plain = None
            if event.id not in existing and event.id not in seen_ids:
                plain = self._plain(index, event, idents[index], by_identity, orders, seen_orders)
            seen_ids.add(event.id)
            if event.order_id is not None and event.type == "purchase":
                seen_orders.add(event.order_id)
            if plain is not None and run and not self._fits(run, plain):
                self._flush(run)
                run = []
            if plain is not None:
                run.append(plain)
                self.run_members.add(plain.member.id)
                continue
            self._flush(run)
            run = []
            item = record_one(self.session, self.tenant, index, event)
            self.items[index] = item
            if item.result is not None and item.result.member_created:
                # A member created on the way owns these identities now: later events that
                # name them go the full way (find_member decides, as one by one).
                self.touched.update(idents[index] or ())
        self._flush(run)

        results = [self.items[i] for i in sorted(self.items)]
        created = sum(1 for r in results if r.status == 201)
        duplicates = sum(1 for r in results if r.status == 200)
        return BatchOut(
            created=created,
            duplicates=duplicates,
            failed=len(results) - created - duplicates,
            results=results,
        )

    def _plain(
        self,
        index: int,
        event: EventIn,
        identities: list[tuple[str, Any]] | None,
        by_identity: dict[tuple[str, Any], list[Member]],
        orders: set[str],
        seen_orders: set[str],
    ) -> _Plain | None:
        """The checks record_event makes, answered without writing; None: take the slow path."""
        if event.type == "refund" or not identities:
            return None
        if any(ident in self.touched for ident in identities):
            return None
        matched = {m.id: m for ident in identities for m in by_identity.get(ident, ())}
        if len(matched) > 1:
            return None  # ambiguous identities: find_member says which
        member = next(iter(matched.values())) if matched else None
        if member is None:
            # Unknown: auto-created below, once the event passed every other check, when
            # creating a member cannot touch the ledger (no signup rules).
            if event.member.id is not None or not self._may_create():
                return None
        elif member.status != "active":
            return None
        now = utcnow()
        occurred_at = as_utc(event.occurred_at) if event.occurred_at else now
        if occurred_at > now + events.FUTURE_SKEW:
            return None
        try:
            program = events._program(self.session, self.tenant, event.program_id)
        except SetiaError:
            return None
        currency: str | None = None
        amount: Decimal | None = None
        lines: list[dict[str, Any]] | None = None
        # The event dumped once: its items as stored (``exclude_none``; a line item holds only
        # text and integers, so JSON mode changes nothing) serve the order's lines and, with
        # their empty fields back, the rules' context.
        payload = event.model_dump(mode="json", exclude_none=True)
        dumped_items: list[dict[str, Any]] = payload.get("items") or []
        try:
            if event.currency is not None:
                currency = check_currency(event.currency)
            if event.type == "purchase":
                if currency is None or event.order_id is None or currency != program.currency:
                    return None
                if event.order_id in orders or event.order_id in seen_orders:
                    return None
                amount = parse_amount(event.amount, currency)
                lines = []
                for item in dumped_items:
                    price = parse_amount(item["unit_price"], currency)
                    lines.append({**item, "unit_price": to_str(price, currency), "returned": 0})
        except MoneyError:
            return None
        created = member is None
        if member is None:
            member = self._prepare(event)
            if member is None:
                return None
            # Later events naming it find it; it is written when its run is (``_flush``).
            for ident in identities:
                by_identity[ident] = [member]
            self.pending[member.id] = identities
        return _Plain(
            created=created,
            index=index,
            event=event,
            program=program,
            member=member,
            occurred_at=occurred_at,
            now=now,
            currency=currency,
            amount=amount,
            lines=lines,
            payload=payload,
            digest=ledger.request_hash(payload, no_floats=not event.attributes),
            context_items=[{**earning.EMPTY_ITEM, **item} for item in dumped_items],
        )

    def _may_create(self) -> bool:
        """Auto-creation is on, and no program of the tenant has signup rules: creating a
        member then writes only the member, its accounts and messages, never a transfer, so
        creating it before the run's earlier events are written changes no balance."""
        if self.may_create is None:
            self.may_create = self.tenant.auto_create_members and not any(
                "member.signup" in spec.body.get("triggers", [])
                for program in programs.list_programs(self.session, self.tenant.id)
                for spec in rule_service.load_specs(self.session, program)
            )
        return self.may_create

    def _prepare(self, event: EventIn) -> Member | None:
        """The member record_event would create for an unknown identity, not yet written
        (None if its data is invalid: the full path then answers the error). Its identities
        are free: the batch looked them all up."""
        data = event.member.model_dump(exclude={"id"}, exclude_none=True)
        try:
            return members.prepare_member(self.tenant, data)
        except SetiaError:
            return None

    def _create(self, run: list[_Plain]) -> bool:
        """Write the members the run's events create, set-based, in event order (what
        record_event does for an unknown member; member_signed_up is not called: with no
        signup rule (``_may_create``) it finds no award and writes nothing). False if that
        failed: then nothing of it is kept, the identities go the full way from now on."""
        new = [p.member for p in run if p.created]
        if not new:
            return True
        savepoint = self.session.begin_nested()
        try:
            members.insert_members(self.session, self.tenant, new)
        except (SQLAlchemyError, SetiaError):
            savepoint.rollback()
            for m in new:
                for ident in self.pending.pop(m.id, ()):
                    self.touched.add(ident)
            return False
        savepoint.commit()
        for m in new:
            self.pending.pop(m.id, None)
        return True

    def _fits(self, run: list[_Plain], plain: _Plain) -> bool:
        """One program per run; with tiers, one event per member (a tier change after an
        event can change what the member's next event earns)."""
        if plain.program.id != run[0].program.id:
            return False
        if tiers.structure(self.session, plain.program.id) is None:
            return True
        return plain.member.id not in self.run_members

    # ------------------------------------------------------------------ writing a run

    def _flush(self, run: list[_Plain]) -> None:
        self.run_members.clear()
        if not self._create(run):
            for p in run:
                self._slow(p)
            return
        while run:
            savepoint = self.session.begin_nested()
            try:
                done = self._write(run)
            except (SQLAlchemyError, SetiaError):
                savepoint.rollback()
                for p in run:
                    self._slow(p)
                return
            savepoint.commit()
            if done == len(run):
                return
            # The event at ``done`` needs what only the full path does (repaying a debt, a
            # member without accounts): record it so, then plan the rest again.
            self._slow(run[done])
            run = run[done + 1 :]

    def _slow(self, p: _Plain) -> None:
        self.items[p.index] = record_one(self.session, self.tenant, p.index, p.event)

    def _write(self, run: list[_Plain]) -> int:
        """Plan and write the run's longest plain prefix; return how many events it wrote."""
        session, tenant = self.session, self.tenant
        program = run[0].program
        # Read once: ORM attribute reads and str(UUID) cost more than a local in a loop that
        # runs per event (tens of them per event).
        tenant_id, program_id, revision, tz = (
            tenant.id,
            program.id,
            program.revision,
            tenant.timezone,
        )
        program_s = str(program_id)
        # One clock reading for the run (its rows' created_at and released_at, and whether an
        # award is still pending): the rows are written in one transaction, and one instant
        # converts once for all of them.
        written_at = utcnow()
        specs = rule_service.load_specs(session, program)
        reads_orders = earning._reads_orders(specs)
        issuance = ledger.program_account(session, program.id, ISSUANCE)
        member_ids = list(dict.fromkeys(p.member.id for p in run))

        # Accounts: the issuance account and the members', counters read once (locked in id
        # order on PostgreSQL; SQLite already holds the write lock).
        acc = _accounts.c
        stmt = (
            select(
                acc.id,
                acc.member_id,
                acc.code,
                acc.debits_posted,
                acc.credits_posted,
                acc.debits_pending,
                acc.credits_pending,
                acc.version,
            )
            .where(
                or_(
                    acc.id == issuance,
                    and_(acc.program_id == program.id, acc.member_id.in_(member_ids)),
                )
            )
            .order_by(acc.id)
        )
        if self.pg:
            stmt = stmt.with_for_update()
        state: dict[uuid.UUID, list[int]] = {}
        owned: dict[uuid.UUID, dict[str, uuid.UUID]] = defaultdict(dict)
        for row in session.execute(stmt):
            state[row.id] = [
                int(row.debits_posted),
                int(row.credits_posted),
                int(row.debits_pending),
                int(row.credits_pending),
                int(row.version),
            ]
            if row.member_id is not None:
                owned[row.member_id][row.code] = row.id
        start = {k: list(v) for k, v in state.items()}
        standing = benefits.member_benefits_many(session, program.id, member_ids)
        # member.referral_count: one query for the run, only when a rule reads it.
        referral_counts = (
            earning.referral_counts(session, program.id, member_ids)
            if earning._reads_referrals(specs)
            else None
        )
        # Stored analytics (member.rfm_segment, ...): one query for the run, only when read.
        scores = (
            store_fields.rule_fields(session, program.id, member_ids)
            if store_fields.reads_scores(specs)
            else {}
        )
        # Badges: progress rows of the run's members read once; member.badges only when a
        # rule reads it, topped up with what earlier events of the run completed.
        badge_run = badges.RunProgress(
            session, tenant, program, ((p.member.id, p.event.type, p.occurred_at) for p in run)
        )
        earned = (
            badges.earned_codes_many(session, program.id, member_ids)
            if earning._reads_badges(specs)
            else None
        )

        usage = _Usage()
        Rows = bulk.Rows
        ev_rows = Rows(_EVENT_COLUMNS, tenant_id=tenant_id, program_id=program_id)
        order_rows = Rows(
            _ORDER_COLUMNS,
            tenant_id=tenant_id,
            program_id=program_id,
            refunded_amount=Decimal(0),
            points_reversed=0,
            created_at=written_at,
        )
        transfer_rows = Rows(
            _TRANSFER_COLUMNS,
            program_id=program_id,
            debit_account_id=issuance,
            code="EARN",
            kind="POSTED",
            pending_id=None,
            program_revision=revision,
            reason=None,
            expires_at=None,
            created_at=written_at,
        )
        entry_rows = Rows(_ENTRY_COLUMNS, created_at=written_at)
        lot_rows = Rows(_LOT_COLUMNS, program_id=program_id)
        award_rows = Rows(_AWARD_COLUMNS, program_id=program_id, trigger_key=None)
        outbox_rows = Rows(_OUTBOX_COLUMNS, tenant_id=tenant_id, created_at=written_at)
        # Appending a row: (id, member_id, ...) in the order of the table's columns above.
        add_event, add_order = ev_rows.rows.append, order_rows.rows.append
        add_transfer, add_entry = transfer_rows.rows.append, entry_rows.rows.append
        add_lot, add_award = lot_rows.rows.append, award_rows.rows.append
        add_message = outbox_rows.rows.append

        def add_entries(transfer_id: uuid.UUID, target: uuid.UUID, points: int) -> None:
            """An EARN's two entries (issuance debited, ``target`` credited), planned on the
            accounts' counters as the ledger would post them."""
            for account_id, dp, cp in ((issuance, points, 0), (target, 0, points)):
                s = state[account_id]
                s[0] += dp
                s[1] += cp
                s[4] += 1
                add_entry((new_id(), account_id, transfer_id, cp - dp, s[1] - s[0] - s[2], s[4]))

        activity: list[tier_activity.Activity] = []
        last_seen: dict[uuid.UUID, datetime] = {}
        # The tenant's programs that expire points after inactivity (usually none).
        dormant = ledger.inactivity_programs(session, tenant_id)
        ledger_now = ledger.clock(session)
        recorded: list[tuple[_Plain, dict[str, Any], uuid.UUID]] = []
        orders_so_far: dict[uuid.UUID, list[datetime]] = defaultdict(list)
        tags: dict[uuid.UUID, list[str]] = {}
        done = 0

        for p in run:
            member, event, occurred_at = p.member, p.event, p.occurred_at
            mid = member.id
            mid_s = str(mid)
            accounts = owned.get(mid, {})
            if not {POINTS, PENDING, DEBT} <= accounts.keys():
                break
            order_count = 0
            if reads_orders:
                order_count = int(
                    session.execute(
                        earning._ORDERS_SO_FAR, {"member_id": mid, "at": occurred_at}
                    ).scalar_one()
                ) + sum(1 for at in orders_so_far[mid] if at <= occurred_at)
            member_ctx = {
                "tags": tags.get(mid, member.tags or []),
                "attributes": member.attributes or {},
                "locale": member.locale,
                "created_at": member.created_at,
                "birthday": member.birthday,
                "order_count": order_count,
                **standing[mid],
                **({"referral_count": referral_counts[mid]} if referral_counts is not None else {}),
                **scores.get(mid, {}),
                **({"badges": earned[mid]} if earned is not None else {}),
            }
            ctx = earning.event_context(
                tenant, event, occurred_at, p.amount, member_ctx, p.context_items
            )
            evaluation = rule_engine.evaluate_rules(
                specs,
                ctx,
                _RunUsage(rule_service.DbUsage(session, mid, program_id), usage, mid),
            )
            awards = earning.to_awards(program, tenant, evaluation, occurred_at)
            pending_flags = [
                # the run's one clock reading, as released_at: a lot released here was due
                a.pending_until is not None and a.pending_until > written_at
                for a in awards
            ]
            debt = state[accounts[DEBT]]
            owed = debt[0] - debt[1]
            if owed > 0 and (not all(pending_flags) or badge_run.counts(event.type)):
                break  # the points (or a badge's) would repay a debt: the full path does that
            if dormant and any(
                ledger.inactive(
                    last_seen.get(mid, member.last_activity_at),
                    months,
                    min(occurred_at, ledger_now),
                )
                for _program, months in dormant
            ):
                break  # the member comes back after the inactivity period: the full path
                # expires their points first, as the job would have

            event_id = new_id()
            event_s = str(event_id)
            total = sum(a.points for a in awards)
            if event.type == "purchase":
                source_type, source_id = "order", event.order_id
            else:
                source_type, source_id = "event", event_s
            result: dict[str, Any] = {
                "id": event.id,
                "event_id": event_s,
                "type": event.type,
                "member_id": mid_s,
                "program_id": program_s,
                "occurred_at": occurred_at.isoformat(),
                "member_created": p.created,
            }
            add_event(
                (
                    event_id,
                    mid,
                    event.id,
                    event.type,
                    occurred_at,
                    p.now,
                    p.digest,
                    event.order_id,
                    p.currency,
                    p.payload,
                    result,
                    p.amount,
                )
            )
            if event.type == "purchase":
                add_order(
                    (
                        new_id(),
                        mid,
                        event.order_id,
                        event_id,
                        p.amount,
                        p.currency,
                        p.lines,
                        total,
                        occurred_at,
                    )
                )
                orders_so_far[mid].append(occurred_at)
            out: dict[str, Any] = {"earned": total, "awards": []}
            for n, (award, is_pending) in enumerate(zip(awards, pending_flags, strict=True)):
                if award.points <= 0:
                    continue
                target = accounts[PENDING] if is_pending else accounts[POINTS]
                transfer_id = new_id()
                add_transfer(
                    (
                        transfer_id,
                        target,
                        award.points,
                        f"event:{event_s}:award:{n}",
                        ledger.request_hash({"event": event_s, "award": n}, no_floats=True),
                        source_type,
                        source_id,
                        "event",
                        {
                            "rule": award.rule,
                            "rule_revision": award.revision,
                            "event_id": event_s,
                        },
                        occurred_at,
                    )
                )
                add_entries(transfer_id, target, award.points)
                add_lot(
                    (
                        new_id(),
                        target,
                        mid,
                        transfer_id,
                        source_type,
                        source_id,
                        award.points,
                        award.points,
                        occurred_at,
                        award.pending_until,
                        None if is_pending else written_at,
                        award.expires_at,
                    )
                )
                answer = earning.award_answer(award, revision, transfer_id)
                out["awards"].append(answer)
                add_message(
                    (
                        new_id(),
                        "points.earned",
                        {
                            "member_id": mid_s,
                            "program_id": program_s,
                            "points": award.points,
                            "order_id": source_id if source_type == "order" else None,
                            "event_id": event_s,
                            "pending_until": answer["pending_until"],
                        },
                    )
                )
            # earning.record: usage rows, and the tags rules gave.
            for a in evaluation.awards:
                if a.rule.id is None:
                    continue
                add_award(
                    (
                        new_id(),
                        a.rule.id,
                        a.rule.revision,
                        a.rule.campaign.id if a.rule.campaign else None,
                        mid,
                        event_id,
                        a.points,
                        occurred_at,
                    )
                )
            usage.record(mid, occurred_at, evaluation)
            completed = badge_run.count(mid, event.type, ctx, occurred_at, event_id)
            # A completion's reward points: one more EARN after the event's awards, planned
            # like them (what ledger.earn writes, in the same order as one by one).
            for reward in badge_run.rewards():
                transfer_id = new_id()
                target = accounts[POINTS]
                add_transfer(
                    (
                        transfer_id,
                        target,
                        reward.points,
                        reward.key,
                        reward.request_hash,
                        "badge",
                        reward.source_id,
                        "badges",
                        reward.details,
                        reward.at,
                    )
                )
                add_entries(transfer_id, target, reward.points)
                add_lot(
                    (
                        new_id(),
                        target,
                        mid,
                        transfer_id,
                        "badge",
                        reward.source_id,
                        reward.points,
                        reward.points,
                        reward.at,
                        None,
                        written_at,
                        programs.expires_at(program, reward.at, tenant.timezone),
                    )
                )
                reward.planned(transfer_id)
            if earned is not None and not completed <= set(earned[mid]):
                earned[mid] = sorted(set(earned[mid]) | completed)
            new_tags = {a.tag for a in evaluation.awards if a.tag}
            current = tags.get(mid, member.tags or [])
            if new_tags and not new_tags <= set(current):
                tags[mid] = sorted(set(current) | new_tags)
            day = tier_activity.local_day(occurred_at, tz)
            if event.type == "purchase":
                assert p.amount is not None
                activity.append(tier_activity.purchase(program_id, mid, day, p.amount, total))
            else:
                activity.append(tier_activity.custom(program_id, mid, day, event.type, total))
            out["not_fired"] = [skip.as_dict() for skip in evaluation.skipped]
            events._explain_tags(out, evaluation)
            result["points"] = out
            add_message(
                (
                    new_id(),
                    "event.recorded",
                    {"event_id": event_s, "type": event.type, "member_id": mid_s},
                )
            )
            last = last_seen.get(mid, member.last_activity_at)
            if last is None or occurred_at > last:
                last_seen[mid] = occurred_at
            recorded.append((p, result, event_id))
            done += 1

        if done == 0:
            return 0
        bumps = [
            {
                "account_id": account_id,
                "expected": start[account_id][4],
                "dp": s[0] - start[account_id][0],
                "cp": s[1] - start[account_id][1],
                "n": s[4] - start[account_id][4],
            }
            for account_id, s in sorted(state.items())
            if s[4] != start[account_id][4]
        ]
        write = bulk.executemany
        cols = bulk.rows_to_columns
        if bumps and write(session, _BUMP, cols(bumps)) != len(bumps):
            raise ledger.LedgerCorrupt("an account changed while its batch was planned")
        ev_rows.write(session, _INSERT_EVENTS)
        order_rows.write(session, _INSERT_ORDERS)
        transfer_rows.write(session, _INSERT_TRANSFERS)
        entry_rows.write(session, _INSERT_ENTRIES)
        lot_rows.write(session, _INSERT_LOTS)
        award_rows.write(session, _INSERT_AWARDS)
        tier_activity.record_many(session, activity)
        outbox_rows.write(session, _INSERT_OUTBOX)
        write(
            session,
            _SET_ACTIVITY,
            {"mid": list(last_seen), "last_activity_at": list(last_seen.values())},
        )
        by_id = {p.member.id: p.member for p, _r, _e in recorded}
        for mid, at in last_seen.items():
            set_committed_value(by_id[mid], "last_activity_at", at)
        if tags:
            for mid, value in tags.items():
                by_id[mid].tags = value
            session.flush()
        badge_run.write(session)
        if tiers.structure(session, program.id) is not None:
            for p, _r, _e in recorded:
                tiers.after_activity(session, tenant, program.id, p.member.id, p.occurred_at)
        # The answers: what ``EventResult.model_validate(_canonical(result))`` gives (a replay
        # answers from the stored ``result``), built from the values already typed; the
        # points part through JSON with sorted keys, as a replay reads it.
        for p, result, event_id in recorded:
            self.items[p.index] = BatchItem.model_construct(
                index=p.index,
                status=201,
                error=None,
                result=EventResult.model_construct(
                    id=p.event.id,
                    event_id=event_id,
                    type=p.event.type,
                    member_id=p.member.id,
                    program_id=program.id,
                    occurred_at=p.occurred_at,
                    member_created=p.created,
                    points=_sorted_json(result["points"]),
                    refund=None,
                ),
            )
        return done


def _sorted_json(value: Any) -> Any:
    """``value`` as a replay reads it back: through JSON, nested keys sorted (orjson; what
    it refuses, ``events._canonical``)."""
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    except orjson.JSONEncodeError:
        return events._canonical(value)


def record_batch(session: Session, tenant: Tenant, raw_events: list[dict[str, Any]]) -> BatchOut:
    """Record a batch: the same answers and rows as one by one, written set-based."""
    return _Batch(session, tenant).run(raw_events)
