"""How well the labels and loyalty types recover the demo's known personas.

The demo generator (``setia.demo.generate``) draws every member from a persona — a
happy-vs-loyal label (loyal, happy, new, at_risk, lost) and a loyalty type (habitual,
transactional, emotional, none) — and stores it on the member as
``attributes.demo_persona = {"label": ..., "loyalty_type": ...}``. The classifier
(:mod:`setia.analytics.labels`) never reads member attributes: it sees only orders, refunds,
redemptions, rule awards and events. This module runs the classifier and compares: per class
precision (of the members given the class, the share that truly are), recall (of the members
that truly are, the share given the class), support, and the confusion matrix (rows: truth,
columns: prediction).

Predictions outside the truth classes (``dissatisfied``, ``none`` for labels) are columns of
the matrix and count against recall. A member with a persona but no order is predicted
``none`` / ``none``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.analytics import labels, members, settings
from setia.core.errors import InvalidInput
from setia.members.models import Member
from setia.programs.models import Program
from setia.tenants.models import Tenant

TRUTH_ATTRIBUTE = "demo_persona"
TRUTH_LABELS = ("loyal", "happy", "new", "at_risk", "lost")
TRUTH_TYPES = ("habitual", "transactional", "emotional", "none")


def ground_truth(session: Session, tenant_id: uuid.UUID) -> dict[uuid.UUID, tuple[str, str]]:
    """``member id -> (label, loyalty type)`` of the members that carry a demo persona."""
    out: dict[uuid.UUID, tuple[str, str]] = {}
    rows = session.execute(
        select(Member.id, Member.attributes).where(Member.tenant_id == tenant_id)
    )
    for mid, attrs in rows:
        persona = (attrs or {}).get(TRUTH_ATTRIBUTE)
        if isinstance(persona, dict):
            label, kind = persona.get("label"), persona.get("loyalty_type")
            if label in TRUTH_LABELS and kind in TRUTH_TYPES:
                out[mid] = (str(label), str(kind))
    return out


def scores(
    pairs: list[tuple[str, str]], truth_classes: tuple[str, ...], predicted_classes: tuple[str, ...]
) -> dict[str, Any]:
    """Precision, recall and support per truth class, accuracy and the confusion matrix."""
    columns = list(truth_classes) + [c for c in predicted_classes if c not in truth_classes]
    for _, p in pairs:
        if p not in columns:
            columns.append(p)
    matrix = {t: dict.fromkeys(columns, 0) for t in truth_classes}
    for t, p in pairs:
        matrix[t][p] += 1
    per_class: dict[str, dict[str, Any]] = {}
    for c in truth_classes:
        tp = matrix[c][c]
        support = sum(matrix[c].values())
        predicted = sum(matrix[t][c] for t in truth_classes)
        per_class[c] = {
            "precision": round(tp / predicted, 4) if predicted else None,
            "recall": round(tp / support, 4) if support else None,
            "support": support,
            "predicted": predicted,
        }
    right = sum(matrix[c][c] for c in truth_classes)
    return {
        "accuracy": round(right / len(pairs), 4) if pairs else None,
        "per_class": per_class,
        "columns": columns,
        "confusion": matrix,
    }


def evaluate(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    as_of: dt.datetime | None = None,
    thresholds: labels.Thresholds | None = None,
) -> dict[str, Any]:
    """Compare the labels and loyalty types of the program's members with their personas.

    ``thresholds`` default to the tenant's stored analytics settings (the defaults of
    :class:`labels.Thresholds` when it has none)."""
    truth = ground_truth(session, tenant.id)
    if not truth:
        raise InvalidInput(
            "no member of this tenant has a demo persona (attributes.demo_persona); build the "
            "demo again with `setia demo --fresh`",
            code="no_ground_truth",
        )
    th = thresholds or settings.get(session, tenant.id).thresholds  # the tenant's own
    analysis = members.analyse(session, tenant, program, as_of=as_of)
    labelled = labels.classify(session, analysis, th)
    label_pairs: list[tuple[str, str]] = []
    type_pairs: list[tuple[str, str]] = []
    for mid, (label, kind) in sorted(truth.items()):
        found = labelled.get(mid)
        label_pairs.append((label, found.label if found else "none"))
        type_pairs.append((kind, found.primary if found else "none"))
    return {
        "program_id": str(program.id),
        "as_of": analysis.summary.as_of.isoformat(),
        "members": len(truth),
        "predictions_missing": analysis.predictions.reason,
        "labels": scores(label_pairs, TRUTH_LABELS, labels.LABELS),
        "loyalty_types": scores(type_pairs, TRUTH_TYPES, labels.PRIMARY),
        "thresholds": th.as_dict(),
    }


def _table(title: str, part: dict[str, Any]) -> list[str]:
    cols: list[str] = part["columns"]
    width = max(12, *(len(c) + 1 for c in cols))
    lines = [f"{title} (accuracy {part['accuracy']})", ""]
    lines.append(f"{'class':<14}{'precision':>10}{'recall':>10}{'support':>9}{'predicted':>11}")
    for c, v in part["per_class"].items():
        prec = "-" if v["precision"] is None else f"{v['precision']:.3f}"
        rec = "-" if v["recall"] is None else f"{v['recall']:.3f}"
        lines.append(f"{c:<14}{prec:>10}{rec:>10}{v['support']:>9}{v['predicted']:>11}")
    lines += ["", "confusion (rows: truth, columns: predicted)"]
    lines.append(f"{'':<14}" + "".join(f"{c:>{width}}" for c in cols))
    for t, row in part["confusion"].items():
        lines.append(f"{t:<14}" + "".join(f"{row[c]:>{width}}" for c in cols))
    return lines


def render(report: dict[str, Any]) -> str:
    """The report as plain-text tables."""
    head = [f"{report['members']} members with a demo persona, as of {report['as_of']}"]
    if report["predictions_missing"]:
        head.append(f"(no P(alive): {report['predictions_missing']})")
    lines = [*head, ""]
    lines += _table("Labels", report["labels"])
    lines.append("")
    lines += _table("Loyalty types (primary)", report["loyalty_types"])
    return "\n".join(lines) + "\n"
