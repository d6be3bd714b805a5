"""Imports every domain's models so that ``Base.metadata`` knows all tables."""

import setia.analytics.tables
import setia.badges.models
import setia.causes.models
import setia.checkout.models
import setia.coupons.models
import setia.referrals.models
import setia.rewards.models
import setia.web.models  # noqa: F401  (each domain's tables, registered on import)
from setia.audit.models import AuditRecord
from setia.core.db import Base
from setia.events.models import Event, Order
from setia.ledger.models import Account, Entry, Lot, LotMovement, Transfer
from setia.members.models import ConsentChange, Member
from setia.memberships.models import (
    MembershipPlan,
    MembershipPlanRevision,
    Subscription,
    SubscriptionPayment,
)
from setia.outbox.models import OutboxMessage
from setia.programs.models import Program, ProgramRevision
from setia.rules.models import Campaign, Rule, RuleAward, RuleRevision
from setia.tenants.models import ApiKey, Tenant
from setia.tiers.models import MemberTier, Tier, TierActivity, TierChange, TierSet

__all__ = [
    "Account",
    "ApiKey",
    "AuditRecord",
    "Base",
    "Campaign",
    "ConsentChange",
    "Entry",
    "Event",
    "Lot",
    "LotMovement",
    "Member",
    "MemberTier",
    "MembershipPlan",
    "MembershipPlanRevision",
    "Order",
    "OutboxMessage",
    "Program",
    "ProgramRevision",
    "Rule",
    "RuleAward",
    "RuleRevision",
    "Subscription",
    "SubscriptionPayment",
    "Tenant",
    "Tier",
    "TierActivity",
    "TierChange",
    "TierSet",
    "Transfer",
]
