from fastapi.testclient import TestClient

from tests.conftest import TenantFixture


def test_purchase_earns_base_points(client: TestClient, tenant: TenantFixture) -> None:
    event = {
        "id": "e1",
        "type": "purchase",
        "member": {"phone": "0812-3456-7890"},
        "order_id": "O1",
        "amount": "85000",
        "currency": "IDR",
    }
    r = client.post("/v1/events", json=event, headers=tenant.headers)
    assert r.status_code == 201, r.text
    assert r.json()["points"]["earned"] == 85
    member_id = r.json()["member_id"]
    balance = client.get(f"/v1/members/{member_id}/balance", headers=tenant.headers).json()
    assert balance["available"] == 85
    member = client.get(f"/v1/members/{member_id}", headers=tenant.headers).json()
    assert member["phone"] == "+6281234567890"
