"""``setia demo --fresh``: drop the demo database and create it again, migrated.

It refuses when the database holds anything but the demo: tenants other than
"Kopi Nusantara", or tables that are not Setia's. Pointing SETIA_DATABASE_URL at a real
database by mistake must never cost its data.
"""

from __future__ import annotations

import socket
from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from setia.core.db import Database
from setia.core.migrate import alembic_config, upgrade
from setia.demo.generate import DemoError, other_tenants


def reset_database(db: Database) -> str:
    """Empty the demo database and migrate it to the current schema. Returns what was done."""
    where = db.engine.url.render_as_string(hide_password=True)
    tables = set(inspect(db.engine).get_table_names())
    if tables and not {"tenants", "alembic_version"} <= tables:
        raise DemoError(
            f"{where} holds tables that are not Setia's ({', '.join(sorted(tables)[:5])}); "
            "refusing to delete it. Point SETIA_DATABASE_URL at a demo database."
        )
    others = other_tenants(db)
    if others:
        shown = ", ".join(repr(n) for n in others[:5]) + (" ..." if len(others) > 5 else "")
        raise DemoError(
            f"{where} holds other tenants ({shown}), not only the demo; refusing to delete "
            "it. Use another database for the demo (e.g. SETIA_DATABASE_URL=sqlite:///./demo.db) "
            "or remove it yourself."
        )
    url = db.engine.url.render_as_string(hide_password=False)
    if db.engine.url.get_backend_name() == "sqlite":
        path = db.engine.url.database
        db.dispose()  # no pooled connection may keep the old file open
        if path and path != ":memory:":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(path + suffix).unlink(missing_ok=True)
        upgrade(url)
        return f"recreated {where}"
    if tables:
        db.dispose()
        command.downgrade(alembic_config(url), "base")
    upgrade(url)
    db.dispose()
    return f"dropped and recreated Setia's tables in {where}"


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (so the API could not start)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
