from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Output models only (the report is read-only). Money is a decimal string.


class Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class ExpiryBucket(Out):
    month: str = Field(description='Local month the points expire, "YYYY-MM", or "never"')
    points: int = Field(description="Outstanding points expiring that month (held included)")
    held: int = Field(description="Of which reserved by open holds")
    value: str = Field(description="points x cost_per_point, in the program's currency")


class Outstanding(Out):
    by_expiry_month: list[ExpiryBucket]
    points: int = Field(description="Sum of the buckets")
    held: int
    value: str
    liability_points: int = Field(
        description="GET /programs/{id}/liability points_outstanding (equals points)"
    )
    liability_value: str


class Breakage(Out):
    issued: int = Field(description="Points earned (EARN and positive ADJUST)")
    expired: int
    rate: str | None = Field(description="expired / issued to 4 places; null if none issued")


class BreakageOut(Out):
    lifetime: Breakage
    period: Breakage


class PointFlows(Out):
    earned: int
    redeemed: int = Field(description="Spent (redemptions, donations, captures) net of returns")
    returned: int
    reversed: int = Field(description="REVERSAL + DEBT + WRITE_OFF")
    expired: int
    adjusted_out: int
    debt_repaid: int
    other: int


class WalletFlows(Out):
    credited: str
    spent: str
    returned: str


class ReversedDetail(Out):
    reversal: int
    debt: int
    written_off: int


class PeriodTotals(Out):
    points: PointFlows
    reversed_detail: ReversedDetail
    redeemed_by_code: dict[str, int] = Field(description="Gross spends by transfer code")
    opening_outstanding: int
    closing_outstanding: int
    wallet: WalletFlows


class Day(Out):
    date: str
    points: PointFlows
    wallet: WalletFlows


class WalletLiability(Out):
    balance: str = Field(description="Money in members' wallets (held included)")
    held: str
    available: str
    wallets: int


class FinanceReport(Out):
    program_id: str
    currency: str
    timezone: str
    cost_per_point: str
    from_: str = Field(alias="from")
    to: str
    generated_at: str
    outstanding: Outstanding
    breakage: BreakageOut
    period: PeriodTotals
    daily: list[Day]
    wallet: WalletLiability
