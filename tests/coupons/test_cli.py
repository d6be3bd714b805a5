"""``setia coupons ...`` run in-process against the test database."""

from __future__ import annotations

import json
from pathlib import Path

from setia.core.db import Database
from tests.conftest import TenantFixture
from tests.test_cli import Invoke, cli, cli_for, ok_json  # noqa: F401  (fixtures)


def test_campaign_generate_import_export_validate(
    cli: Invoke,  # noqa: F811
    db: Database,
    tenant: TenantFixture,
    tmp_path: Path,
) -> None:
    t = str(tenant.tenant_id)
    spec = tmp_path / "campaign.json"
    spec.write_text(
        json.dumps(
            {
                "code": "kopi-10k",
                "names": {"id": "Potongan Rp 10.000", "en": "Rp 10,000 off"},
                "discount": {"type": "fixed", "amount": "10000"},
                "conditions": {"min_spend": "30000"},
                "code_pattern": "KOPI-####-????",
            }
        )
    )
    made = ok_json(cli("coupons", "campaign-create", str(spec), "--tenant", t))
    assert made["code"] == "kopi-10k"
    gen = ok_json(cli("coupons", "generate", "kopi-10k", "--tenant", t, "--count", "50", "--show"))
    assert gen["count"] == 50
    assert len(set(gen["codes"])) == 50
    pool = tmp_path / "pool.csv"
    pool.write_text("code,expires_at\nPARTNER-0001,2027-01-31\nPARTNER-0002,\n")
    imp = ok_json(cli("coupons", "import", made["id"], str(pool), "--tenant", t))
    assert imp["count"] == 2
    exported = cli("coupons", "export", "kopi-10k", "--tenant", t)
    assert exported.exit_code == 0, exported.stderr
    lines = exported.stdout.strip().splitlines()
    assert lines[0].split(",")[:2] == ["code", "status"]
    assert len(lines) == 53
    cart = json.dumps(
        {"currency": "IDR", "items": [{"sku": "KOPI", "quantity": 1, "unit_price": "25000"}]}
    )
    short = ok_json(cli("coupons", "validate", "partner-0002", "--tenant", t, "--cart", cart))
    assert short["valid"] is False
    assert short["reason_code"] == "min_spend_not_met"
    assert "Rp\xa05,000" in short["reason"]
    fine = cart.replace('"quantity": 1', '"quantity": 2')
    good = ok_json(cli("coupons", "validate", gen["codes"][0], "--tenant", t, "--cart", fine))
    assert good["valid"] is True
    assert good["discount"] == "10000"


def test_cli_errors_are_clear(
    cli: Invoke,  # noqa: F811
    db: Database,
    tenant: TenantFixture,
    tmp_path: Path,
) -> None:
    t = str(tenant.tenant_id)
    missing = cli("coupons", "generate", "nope", "--tenant", t, "--count", "5")
    assert missing.exit_code == 1
    assert "no coupon campaign 'nope'" in missing.stderr
    spec = tmp_path / "c.json"
    spec.write_text(
        json.dumps(
            {"code": "c", "names": {"en": "C"}, "discount": {"type": "fixed", "amount": "1000"}}
        )
    )
    ok_json(cli("coupons", "campaign-create", str(spec), "--tenant", t))
    small = cli("coupons", "generate", "c", "--tenant", t, "--count", "10", "--pattern", "##-##")
    assert small.exit_code == 1
    assert "1,000 times" in small.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("code\nGOOD-0001\nGOOD-0001\n")
    imported = cli("coupons", "import", "c", str(bad), "--tenant", t)
    assert imported.exit_code == 1
    assert "line 3: duplicate of line 2" in imported.stderr
