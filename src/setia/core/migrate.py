"""Schema migrations (Alembic), run from code so the installed package needs no ini file."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from setia.core.errors import SchemaMissing

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    value = script.get_current_head()
    assert value is not None
    return value


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Raise a clear error when the database has no schema or an old one."""
    rev = current(engine)
    target = head()
    if rev == target:
        return
    where = engine.url.render_as_string(hide_password=True)
    if rev is None:
        raise SchemaMissing(
            f"the database {where} has no Setia schema yet; run `setia db upgrade` first"
        )
    raise SchemaMissing(
        f"the database {where} is at schema revision {rev} but this Setia needs {target}; "
        "run `setia db upgrade`"
    )
