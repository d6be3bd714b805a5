from __future__ import annotations

import typer

app = typer.Typer(help="causes", no_args_is_help=True)
