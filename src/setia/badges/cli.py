"""`setia badges`: the operator's commands for the badges domain."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Badges and challenges: definitions, progress, leaderboards.", no_args_is_help=True
)
