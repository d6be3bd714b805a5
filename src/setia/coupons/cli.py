from __future__ import annotations

import typer

app = typer.Typer(help="coupons", no_args_is_help=True)
