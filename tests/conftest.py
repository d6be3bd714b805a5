"""Test fixtures. The whole suite runs on SQLite (default) and on PostgreSQL (``--db=postgres``).

Each test gets its own database, migrated with Alembic (so migrations are tested on both
backends): a copy of a migrated SQLite file, or a PostgreSQL database cloned from a
migrated template.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from setia.app import create_app
from setia.core.db import Database
from setia.core.migrate import upgrade
from setia.tenants import service as tenants
from tests.pgcluster import Cluster


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db", default="sqlite", choices=["sqlite", "postgres"], help="database backend"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres_only: needs PostgreSQL (row locks, real concurrency)"
    )
    config.addinivalue_line("markers", "sqlite_only: about SQLite's own behaviour (one writer)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--db") == "postgres":
        other, skip = "sqlite_only", pytest.mark.skip(reason="SQLite only; runs in the SQLite pass")
    else:
        other = "postgres_only"
        skip = pytest.mark.skip(
            reason="PostgreSQL only; runs in the --db=postgres pass of make test"
        )
    for item in items:
        if other in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def _template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield str(path)
        return
    cluster = Cluster()
    admin_url = cluster.start()
    try:
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE setia_template"))
        upgrade(admin_url.rsplit("/", 1)[0] + "/setia_template")
        engine.dispose()
        yield admin_url
    finally:
        cluster.stop()


_counter = itertools.count()


@pytest.fixture
def db_url(backend: str, _template: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        target = tmp_path / "test.db"
        shutil.copy(_template, target)
        yield f"sqlite:///{target}"
        return
    name = f"t_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(_template, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE setia_template"))
    try:
        yield _template.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@dataclass
class TenantFixture:
    tenant_id: uuid.UUID
    program_id: uuid.UUID
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_tenant(db: Database, **kw: Any) -> TenantFixture:
    params = {
        "name": "Kopi Test",
        "country": "ID",
        "currency": "IDR",
        "timezone": "Asia/Jakarta",
        **kw,
    }
    with db.session() as session:
        new = tenants.create_tenant(session, **params)
        return TenantFixture(new.tenant.id, new.program.id, new.secret)


@pytest.fixture
def tenant(db: Database) -> TenantFixture:
    return make_tenant(db)


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db), raise_server_exceptions=False) as c:
        yield c
