from __future__ import annotations

import typer

app = typer.Typer(help="rewards", no_args_is_help=True)
