"""Mounts the console and the portal on the FastAPI app. Each area's pages live in their own
module (``web/console/<area>.py``, ``web/portal/<area>.py``) with a ``router``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from setia.web.console import (
    analytics,
    auth,
    badges,
    causes,
    dashboard,
    members,
    pos,
    referrals,
    rewards,
    rules,
    settings,
    tiers,
)
from setia.web.deps import SignInRequired, WebForbidden
from setia.web.errors import forbidden, sign_in_required
from setia.web.portal import auth as portal_auth
from setia.web.portal import pages as portal_pages

ROUTERS = (
    auth.router,
    dashboard.router,
    members.router,
    pos.router,
    rules.router,
    tiers.router,
    rewards.router,
    causes.router,
    referrals.router,
    badges.router,
    analytics.router,
    settings.router,
    portal_auth.router,
    portal_pages.router,
)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return sign_in_required(request, exc)

    @app.exception_handler(WebForbidden)
    async def _forbidden(request: Request, exc: WebForbidden) -> HTMLResponse:
        return forbidden(request, exc)

    @app.get("/console/", include_in_schema=False)
    def _console_slash() -> RedirectResponse:
        return RedirectResponse("/console", status_code=307)
