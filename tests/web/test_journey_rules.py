"""Browser journey: the owner edits a rule (an error first, then the points), checks the cost
with a replay, and runs the simulator with its why-not answers; screenshots of the rules,
tiers and plans pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from setia.programs.models import Program
from tests.conftest import TenantFixture
from tests.web.conftest import LiveServer, browser_session, browser_wait, shot


def _seed(client: TestClient, tenant: TenantFixture) -> None:
    h = tenant.headers
    for body in (
        {
            "name": "Kopi pagi",
            "triggers": ["purchase"],
            "conditions": {"field": "event.amount", "op": "gte", "value": "30000"},
            "effect": {"type": "fixed", "points": 20},
        },
        {
            "name": "VIP double",
            "triggers": ["purchase"],
            "conditions": {"field": "member.tags", "op": "contains", "value": "vip"},
            "effect": {"type": "multiplier", "factor": "2"},
        },
    ):
        assert client.post("/v1/rules", json=body, headers=h).status_code == 201
    for i in range(4):
        r = client.post(
            "/v1/events",
            json={
                "id": f"j{i}",
                "type": "purchase",
                "member": {"phone": f"0812777700{i:02d}", "name": f"Member {i}"},
                "order_id": f"oj{i}",
                "amount": "45000",
                "currency": "IDR",
            },
            headers=h,
        )
        assert r.status_code in (200, 201), r.text
    tiers = {
        "name": "Kopi tiers",
        "metrics": [{"metric": "spend"}],
        "window": {"kind": "rolling", "months": 12},
        "retention": {"kind": "months", "months": 12},
        "tiers": [
            {
                "code": "bronze",
                "names": {"id": "Perunggu", "ms": "Gangsa", "en": "Bronze"},
                "thresholds": ["0"],
            },
            {
                "code": "gold",
                "names": {"id": "Emas", "ms": "Emas", "en": "Gold"},
                "thresholds": ["1000000"],
                "earn_multiplier": "1.5",
                "perks": [{"id": "Gratis upsize", "ms": "Saiz besar percuma", "en": "Free upsize"}],
            },
        ],
    }
    r = client.put(f"/v1/programs/{tenant.program_id}/tier-set", json=tiers, headers=h)
    assert r.status_code == 200, r.text
    plan = {
        "code": "member-plus",
        "names": {"id": "Member Plus", "ms": "Ahli Plus", "en": "Member Plus"},
        "price": "49000",
        "currency": "IDR",
        "period": "monthly",
        "tier_code": "gold",
        "tier_mode": "protect",
        "earn_multiplier": "1.5",
        "monthly_bonus_points": 500,
    }
    assert client.post("/v1/membership-plans", json=plan, headers=h).status_code == 201
    member = client.post(
        "/v1/members", json={"phone": "081277779999", "name": "Sari"}, headers=h
    ).json()["id"]
    sub = {
        "member_id": member,
        "plan": "member-plus",
        "payment": {"gateway": "test", "external_id": "pj1", "amount": "49000", "currency": "IDR"},
    }
    assert client.post("/v1/subscriptions", json=sub, headers=h).status_code in (200, 201)


def _submit(browser: Any, wait: WebDriverWait[Any], css: str) -> None:
    button = browser.find_element(By.CSS_SELECTOR, css)
    button.click()

    def replaced(_driver: Any) -> bool:
        # Chromium sometimes answers a look at a node of the page being replaced with an
        # inspector error ("Node with given id does not belong to the document") instead
        # of a stale-element error: both mean the new page is in.
        try:
            button.is_enabled()
        except (StaleElementReferenceException, WebDriverException):
            return True
        return False

    wait.until(replaced)


def _set(browser: Any, element_id: str, value: str) -> None:
    el = browser.find_element(By.ID, element_id)
    browser.execute_script("arguments[0].value = arguments[1];", el, value)


def test_owner_edits_a_rule_sees_the_cost_and_runs_the_simulator(
    browser: Any,
    live_server: LiveServer,
    staff_user: Any,
    client: TestClient,
    tenant: TenantFixture,
) -> None:
    _seed(client, tenant)
    with live_server.db.session() as s:
        program = s.get(Program, tenant.program_id)
        assert program is not None
        program.cost_per_point = Decimal(10)
        s.commit()
    browser_session(browser, live_server, staff_user("owner"))
    wait = browser_wait(browser, 15)

    browser.get(live_server.url + "/console/rules")
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Kopi pagi")))
    shot(browser, "rules-list")
    browser.find_element(By.LINK_TEXT, "Kopi pagi").click()
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Edit"))).click()
    wait.until(ec.presence_of_element_located((By.ID, "f-effect")))

    # A mistake first: the error is shown next to the effect field, nothing saved.
    _set(browser, "f-effect", '{"type": "fixed", "points": -20}')
    _submit(browser, wait, 'button[value="save"]')
    err = wait.until(ec.visibility_of_element_located((By.ID, "err-effect")))
    assert err.text.startswith("effect.points: must be 0 or more")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", err)
    shot(browser, "rules-edit-error")

    # The cost of giving 40 points instead of 20, before saving.
    _set(browser, "f-effect", '{"type": "fixed", "points": 40}')
    _submit(browser, wait, 'button[value="replay"]')
    points = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, '[data-replay="points"]'))
    )
    assert points.text == "+80"
    assert browser.find_element(By.CSS_SELECTOR, '[data-replay="members"]').text == "4"
    assert browser.find_element(By.CSS_SELECTOR, '[data-replay="cost"]').text.endswith("800")
    browser.execute_script("document.getElementById('replay').scrollIntoView();")
    shot(browser, "rules-replay")

    _submit(browser, wait, 'button[value="save"]')
    flash = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".flash")))
    assert "Saved as revision 2." in flash.text
    assert '"points": 40' in browser.page_source

    # The simulator: the edited rule fires with its new points; VIP double says why not.
    browser.find_element(By.LINK_TEXT, "Try an event").click()
    wait.until(ec.presence_of_element_located((By.ID, "f-amount"))).send_keys("50000")
    browser.find_element(By.ID, "f-tags").send_keys("student")
    _submit(browser, wait, ".sim-form button[type=submit]")
    total = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, '[data-sim="points"]')))
    assert total.text == "90"  # 50 base + 40
    fired = browser.find_element(By.CSS_SELECTOR, "tr.fired:nth-child(2)").text
    assert "Kopi pagi" in fired
    assert "40" in fired
    why = browser.find_element(By.CSS_SELECTOR, ".why-list").text
    assert "VIP double" in why
    assert 'member.tags contains vip — actual value: ["student"]' in why
    shot(browser, "rules-simulator")

    browser.get(live_server.url + "/console/tiers")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '[data-tier-members="bronze"]')))
    assert "Free upsize" in browser.page_source
    shot(browser, "tiers")
    browser.get(live_server.url + "/console/plans")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '[data-plan-live="member-plus"]')))
    live = browser.find_element(By.CSS_SELECTOR, '[data-plan-live="member-plus"]')
    assert live.text == "1"
    shot(browser, "plans")
