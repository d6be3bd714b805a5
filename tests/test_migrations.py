"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import setia.models as models

# SQLite cannot add a foreign key to an existing table without copying it (which would drop
# the ledger's append-only triggers), so 0005 declares this one on PostgreSQL only.
SQLITE_ONLY_GAPS = {("add_fk", "fk_ledger_transfers_reverses_id_ledger_transfers")}


def _key(diff: Any) -> tuple[str, str]:
    op = diff[0] if isinstance(diff, tuple) else diff[0][0]
    obj = diff[1] if isinstance(diff, tuple) else diff[0]
    return str(op), str(getattr(obj, "name", obj))


def test_migrated_schema_matches_the_models(db_url: str, backend: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    finally:
        engine.dispose()
    allowed = SQLITE_ONLY_GAPS if backend == "sqlite" else set()
    left = [d for d in diffs if _key(d) not in allowed]
    assert left == [], "migrations and models differ:\n" + "\n".join(map(str, left))
