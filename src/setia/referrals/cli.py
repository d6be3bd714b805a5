"""`setia referrals`: the operator's commands for the referrals domain."""

from __future__ import annotations

import typer

app = typer.Typer(help="Referral programs: codes, review queue, funnel.", no_args_is_help=True)
