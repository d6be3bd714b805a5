"""A factory of fresh databases, for property tests that need one per Hypothesis example.

``setia ledger verify`` checks every program in a database, and the job runner's report
counts every tenant's work: a clean database per example keeps each check small and each
report exact.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from setia.core.db import Database

_counter = itertools.count()


@pytest.fixture
def fresh_db(backend: str, _template: str, tmp_path: Path) -> Iterator[Callable[[], Database]]:
    """Call it for a new, migrated, empty database (a copy of the session's template).

    The caller disposes of each database's engine when done with it. The PostgreSQL
    databases are left in the throwaway cluster, which the session removes: dropping each
    costs about as much as creating it.
    """
    made: list[Database] = []
    admin = create_engine(_template, isolation_level="AUTOCOMMIT") if backend != "sqlite" else None

    def make() -> Database:
        n = next(_counter)
        if admin is None:
            target = tmp_path / f"example-{n}.db"
            shutil.copy(_template, target)
            database = Database(f"sqlite:///{target}")
        else:
            name = f"p_{n}_{uuid.uuid4().hex[:6]}"
            with admin.connect() as conn:
                conn.execute(
                    text(f"CREATE DATABASE {name} TEMPLATE setia_template STRATEGY FILE_COPY")
                )
            database = Database(_template.rsplit("/", 1)[0] + "/" + name)
        made.append(database)
        return database

    yield make
    for database in made:
        database.dispose()
    if admin is not None:
        admin.dispose()
