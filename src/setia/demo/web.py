"""The demo's console users and the member whose portal `make demo` links to."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.members.models import Member
from setia.web import security, staff
from setia.web.models import StaffUser

# Demo only: printed by `setia demo`. A real tenant's users are invited (`setia staff create` without a password prints an invite link).
DEMO_PASSWORD = "kopi-nusantara-demo"
DEMO_USERS = (
    ("owner@demo.setia.dev", "owner", "Sari Wulandari"),
    ("kasir@demo.setia.dev", "cashier", "Budi Santoso"),
    ("marketing@demo.setia.dev", "marketer", "Dewi Lestari"),
    ("analis@demo.setia.dev", "analyst", "Rizky Pratama"),
)


def ensure_console_users(session: Session, tenant_id: uuid.UUID) -> list[dict[str, str]]:
    """The demo staff users, active with the demo password (reset if they already exist)."""
    out = []
    for email, role, name in DEMO_USERS:
        user = session.scalars(select(StaffUser).where(StaffUser.email == email)).first()
        if user is None:
            staff.create_user(
                session,
                tenant_id=tenant_id,
                email=email,
                role=role,
                name=name,
                locale="id",
                password=DEMO_PASSWORD,
            )
        else:
            user.password_hash = security.hash_password(DEMO_PASSWORD)
            user.status = "active"
        out.append({"email": email, "role": role, "password": DEMO_PASSWORD})
    session.flush()
    return out


def portal_member(session: Session, tenant_id: uuid.UUID) -> dict[str, Any] | None:
    """A loyal demo member with a phone number, for the portal link."""
    rows = session.scalars(
        select(Member)
        .where(
            Member.tenant_id == tenant_id,
            Member.status == "active",
            Member.phone.is_not(None),
        )
        .order_by(Member.created_at)
        .limit(200)
    ).all()
    chosen = next(
        (
            m
            for m in rows
            if ((m.attributes or {}).get("demo_persona") or {}).get("label") == "loyal"
        ),
        rows[0] if rows else None,
    )
    if chosen is None:
        return None
    return {"member_id": str(chosen.id), "name": chosen.name, "phone": chosen.phone}
