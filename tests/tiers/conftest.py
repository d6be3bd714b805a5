"""Tier test fixtures: a controllable clock for the tiers domain and row snapshots.

The tiers service reads the time through ``setia.tiers.service.utcnow`` (today's local day
for overrides, plan benefits, refunds and the member view). The clock fixture replaces it,
so a simulated year can put "today" anywhere; events are still backdated through the API
(the events domain refuses future times), and evaluations take their day explicitly.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from setia.core.time import utcnow
from tests.conftest import TenantFixture
from tests.rules.helpers import JKT, Api


class Clock:
    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now if self.now is not None else utcnow()

    def set(self, y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> None:
        """Move "now" to a wall-clock time in Jakarta."""
        self.now = datetime(y, m, d, hh, mm, tzinfo=JKT)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("setia.tiers.service.utcnow", c)
    return c


@pytest.fixture
def api(client: TestClient, tenant: TenantFixture) -> Api:
    return Api(client, tenant)
