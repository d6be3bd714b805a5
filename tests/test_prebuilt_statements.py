"""Statements built once at import time keep the types of their parameters whatever was
imported before them.

A column with a foreign key and no type of its own takes the type of the column it points
to only once that table is known. ``column == bindparam("x")`` copies the column's type
when the expression is built, so a statement built at import, before the other table's
module was imported, would keep no type and send a UUID to SQLite as it is ("type 'UUID' is
not supported"), depending on import order. Each module that builds statements with
``bindparam`` is imported first in a fresh interpreter here, and its statements' comparison
parameters must all have a type. (A bare ``insert(table)`` is left out: its parameters are
the columns' own, typed when it is compiled for a run, by which time every table is known.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "setia"
MODULES = sorted(
    "setia." + ".".join(p.relative_to(SRC).with_suffix("").parts)
    for p in SRC.rglob("*.py")
    if "migrations" not in p.parts and "bindparam(" in p.read_text(encoding="utf-8")
)

CHECK = """
import importlib, sys
from sqlalchemy.sql import CompoundSelect, Delete, Select, Update
from sqlalchemy.sql.sqltypes import NullType
mod = importlib.import_module(sys.argv[1])
for name, value in vars(mod).items():
    if isinstance(value, (Select, CompoundSelect, Update, Delete)):
        for key, bind in value.compile().binds.items():
            if isinstance(bind.type, NullType) and bind.value is None:
                print(f"{name}: parameter {key} has no type")
"""


def test_the_modules_are_found() -> None:
    assert "setia.ledger.service" in MODULES
    assert "setia.tiers.context" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_statements_built_at_import_have_typed_parameters(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK, module], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "", out.stdout
