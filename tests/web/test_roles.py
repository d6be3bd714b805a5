"""Every console route guarded by a permission refuses (403) every role the matrix in
``setia.web.roles`` does not allow, and writes nothing; forms without the CSRF token are
refused too."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

from setia.app import create_app
from setia.audit.models import AuditRecord
from setia.core.db import Database
from setia.tenants.models import Tenant
from setia.web import roles
from setia.web.models import ROLES, StaffUser
from tests.conftest import TenantFixture


def _permissions(dependant: Any) -> set[str]:
    """The permissions ``deps.require`` put anywhere in a route's dependency tree."""
    found: set[str] = set()
    for dep in dependant.dependencies:
        permission = getattr(dep.call, "permission", None)
        if isinstance(permission, str):
            found.add(permission)
        found |= _permissions(dep)
    return found


def guarded_routes(db: Database) -> Iterator[tuple[str, str, set[str]]]:
    """(method, path, permissions) for every guarded route of the app. FastAPI keeps
    included routers as lazy branches; ``iter_route_contexts`` walks them with their prefixes."""
    for ctx in iter_route_contexts(create_app(db).routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or not ctx.path:
            continue
        needed = _permissions(route.dependant)
        if not needed:
            continue
        for method in sorted(ctx.methods or ()):
            if method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                yield method, str(ctx.path), needed


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), path)


def test_every_guarded_route_refuses_the_roles_without_its_permission(
    console_as: Any, db: Database
) -> None:
    routes = list(guarded_routes(db))
    assert routes, "no guarded console routes found"
    clients = {role: console_as(role) for role in ROLES}
    used: set[str] = set()
    checked = 0
    failures = []
    for method, path, needed in routes:
        used |= needed
        url = _fill(path)
        for role in ROLES:
            if all(roles.allowed(role, p) for p in needed):
                continue
            c = clients[role]
            if method == "GET":
                r = c.get(url, follow_redirects=False)
            else:
                r = c.client.request(
                    method,
                    url,
                    data={"csrf_token": c.csrf},
                    headers={"X-CSRF-Token": c.csrf},
                    follow_redirects=False,
                )
            checked += 1
            if r.status_code != 403:
                failures.append(f"{role} {method} {path} -> {r.status_code}")
    assert not failures, "\n".join(failures)
    assert checked > 0
    with db.session() as s:  # nothing refused left a trace
        assert s.scalar(select(func.count()).select_from(AuditRecord)) == 0
    unused = sorted(set(roles.PERMISSIONS) - used)
    print(f"checked {checked} refusals on {len(routes)} guarded routes")
    if unused:
        print("permissions no route uses yet:", ", ".join(unused))
    # the settings area guards each of its permissions
    assert {
        "settings.view",
        "settings.tenant",
        "settings.programs",
        "settings.keys",
        "settings.staff",
    } <= used


def test_the_matrix_knows_every_role_and_permission_used() -> None:
    for permission, allowed in roles.PERMISSIONS.items():
        assert allowed <= set(ROLES), permission
        assert "owner" in allowed, f"the owner may do everything, not {permission}"
    assert not roles.allowed("owner", "no.such.permission")


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/console/settings/tenant", {"name": "Changed", "timezone": "UTC", "locale": "en"}),
        ("/console/settings/keys", {"name": "sneaky", "scope": "admin"}),
        ("/console/settings/staff/invite", {"email": "x@example.com", "role": "admin"}),
    ],
)
def test_settings_forms_without_the_csrf_token_change_nothing(
    console_as: Any, db: Database, tenant: TenantFixture, url: str, data: dict[str, str]
) -> None:
    c = console_as("owner")
    before = _state(db, tenant)
    r = c.post(url, data, csrf=False)
    assert r.status_code == 403
    assert "did not come from this site" in r.text
    r = c.post(url, {**data, "csrf_token": "forged"}, csrf=False)
    assert r.status_code == 403
    assert _state(db, tenant) == before


def _state(db: Database, tenant: TenantFixture) -> tuple[Any, ...]:
    from setia.tenants.models import ApiKey

    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        assert t is not None
        return (
            t.name,
            s.scalar(select(func.count()).select_from(ApiKey)),
            s.scalar(select(func.count()).select_from(StaffUser)),
            s.scalar(select(func.count()).select_from(AuditRecord)),
        )


def test_the_navigation_hides_settings_from_roles_without_it(console_as: Any) -> None:
    for role in ROLES:
        page = console_as(role).get("/console/settings", follow_redirects=False)
        if roles.allowed(role, "settings.view"):
            assert page.status_code == 303
        else:
            assert page.status_code == 403
            assert 'href="/console/settings"' not in page.text
