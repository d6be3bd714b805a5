"""What each staff role may see and do in the console. The server checks these on every
request (``deps.require``); the navigation only hides what a role cannot open.

Roles: ``owner`` (everything, the only one who edits the tenant and manages owners),
``admin`` (everything else), ``marketer`` (programs, campaigns, members read-only, analytics),
``cashier`` (the point-of-sale page and member lookup), ``analyst`` (dashboard and analytics,
read-only)."""

from __future__ import annotations

from setia.web.models import ROLES

ALL = frozenset(ROLES)
MANAGERS = frozenset({"owner", "admin"})

PERMISSIONS: dict[str, frozenset[str]] = {
    # dashboard and analytics
    "dashboard.view": frozenset({"owner", "admin", "marketer", "analyst"}),
    "analytics.view": frozenset({"owner", "admin", "marketer", "analyst"}),
    "analytics.export": frozenset({"owner", "admin", "marketer", "analyst"}),
    "analytics.edit": frozenset({"owner", "admin", "marketer"}),  # saved segments, settings
    # members
    "members.view": ALL,
    "members.edit": frozenset({"owner", "admin"}),  # profile, consents, tier assignment
    "members.adjust": frozenset({"owner", "admin"}),  # manual points adjustment
    "members.merge": frozenset({"owner", "admin"}),
    "members.export": frozenset({"owner", "admin"}),
    "members.erase": frozenset({"owner"}),
    # programs: rules, campaigns, tiers, plans, rewards, coupons, causes, referrals, badges
    "program.view": frozenset({"owner", "admin", "marketer", "analyst"}),
    "program.edit": frozenset({"owner", "admin", "marketer"}),
    "referrals.review": frozenset({"owner", "admin", "marketer"}),
    # point of sale
    "pos.use": frozenset({"owner", "admin", "cashier"}),
    # settings
    "settings.view": MANAGERS,
    "settings.tenant": frozenset({"owner"}),
    "settings.programs": MANAGERS,
    "settings.keys": MANAGERS,
    "settings.staff": MANAGERS,  # an admin cannot invite, change or disable an owner
}


def allowed(role: str, permission: str) -> bool:
    """True when ``role`` has ``permission``; an unknown permission is refused to everyone."""
    return role in PERMISSIONS.get(permission, frozenset())


def home_for(role: str) -> str:
    """Where a role lands after signing in."""
    return "/console/pos" if role == "cashier" else "/console"
