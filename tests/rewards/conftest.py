from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantFixture
from tests.rewards.helpers import Api


@pytest.fixture
def api(client: TestClient, tenant: TenantFixture) -> Api:
    return Api(client, tenant)
