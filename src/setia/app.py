"""The FastAPI application: routers, problem-details errors, request size limit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from setia import __version__
from setia.analytics.api import router as analytics_router
from setia.analytics.kpis_api import router as analytics_kpis_router
from setia.analytics.store_api import router as analytics_store_router
from setia.badges.api import router as badges_router
from setia.causes.api import router as causes_router
from setia.checkout.api import router as checkout_router
from setia.core.config import get_settings
from setia.core.db import Database, get_database
from setia.core.errors import SetiaError, validation_message
from setia.core.migrate import check_schema
from setia.core.runtime import tune_gc
from setia.coupons.api import router as coupons_router
from setia.events.api import router as events_router
from setia.finance.api import router as finance_router
from setia.ledger.api import router as ledger_router
from setia.members.api import router as members_router
from setia.memberships.api import router as memberships_router
from setia.programs.api import router as programs_router
from setia.referrals.api import router as referrals_router
from setia.rewards.api import router as rewards_router
from setia.rules.api import router as rules_router
from setia.tenants.api import router as tenants_router
from setia.tiers.api import router as tiers_router
from setia.wallet.api import router as wallet_router
from setia.web import errors as web_errors
from setia.web.routes import install as install_web

log = logging.getLogger("setia")
PROBLEM = "application/problem+json"
STATIC = Path(__file__).resolve().parent / "static"


def _problem(
    status: int, code: str, title: str, detail: str, instance: str, **extra: Any
) -> JSONResponse:
    """A problem answer (``instance``: the request's path, as ``SetiaError.problem`` gives)."""
    body = {
        "type": f"https://setia.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


class BodyLimit:
    """Refuse bodies over the limit with 413 before the app reads them into memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0
        started = rejected = False

        async def limited() -> Message:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer 413 now: FastAPI turns any error raised while it reads the body
                    # into its own 400, which ``guarded`` then drops.
                    if not started and not rejected:
                        await self._reject(scope, receive, send)
                    rejected = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with suppress(_TooLarge):
            await self.app(scope, limited, guarded)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _problem(
            413,
            "payload_too_large",
            "Request body too large",
            f"the body is larger than {self.max_bytes} bytes; send fewer events per batch",
            str(scope.get("path", "")),
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(db: Database | None = None) -> FastAPI:
    settings = get_settings()
    database = db or get_database()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Refuse to start on a database without the current schema, with the fix in the message.
        check_schema(database.engine)
        tune_gc()
        checkpointer = database.start_checkpointer(settings.sqlite_checkpoint_seconds)
        try:
            yield
        finally:
            if checkpointer is not None:
                # Its join may take up to an interval: not on the event loop.
                await anyio.to_thread.run_sync(checkpointer.stop)

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        title="Setia",
        version=__version__,
        summary="Customer loyalty: members, events and a points ledger that never loses a point.",
        description=(
            "Authenticate with `Authorization: Bearer <API key>`. Errors are RFC 9457 problem "
            "details with a stable `code`. Writes accept an `Idempotency-Key` header; events are "
            "idempotent by their own `id`. Lists use cursor pagination (`cursor`, `next_cursor`)."
        ),
    )
    app.state.db = database

    @app.exception_handler(SetiaError)
    async def setia_error(request: Request, exc: SetiaError) -> Response:
        if web_errors.is_web(request):
            return web_errors.page(request, exc.status, exc.detail)
        return JSONResponse(
            exc.problem(str(request.url.path)), status_code=exc.status, media_type=PROBLEM
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if web_errors.is_web(request):
            return web_errors.page(request, 422)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": validation_message(e), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return _problem(
            422, "validation_error", "Invalid payload", detail, request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if web_errors.is_web(request):
            return web_errors.page(request, exc.status_code)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _problem(exc.status_code, code, str(exc.detail), str(exc.detail), request.url.path)

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refuses some values that passed validation: a NUL character (\u0000)
        # in a text, a number too large for its column. Nothing was written.
        log.info(
            "value refused by the database on %s %s: %s", request.method, request.url.path, exc.orig
        )
        return _problem(
            422,
            "invalid_input",
            "Invalid input",
            "a value cannot be stored: remove NUL characters (\\u0000) from texts and keep "
            "numbers within their documented range; nothing was saved",
            request.url.path,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if web_errors.is_web(request):
            return web_errors.page(request, 500)
        return _problem(
            500,
            "internal_error",
            "Internal error",
            "something went wrong on our side; nothing was saved. Try again or contact the operator.",
            request.url.path,
        )

    # Interactive docs from vendored Swagger UI: nothing is fetched from the internet.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Setia API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness check for load balancers; needs no API key."""
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False)
    def index() -> dict[str, str]:
        return {
            "name": "Setia",
            "console": "/console",
            "portal": "/portal",
            "docs": "/docs",
            "openapi": "/openapi.json",
        }

    for router in (
        tenants_router,
        programs_router,
        members_router,
        events_router,
        ledger_router,
        rules_router,
        memberships_router,
        tiers_router,
        coupons_router,
        causes_router,
        rewards_router,
        checkout_router,
        wallet_router,
        finance_router,
        analytics_router,
        analytics_kpis_router,
        analytics_store_router,
        referrals_router,
        badges_router,
    ):
        app.include_router(router)
    install_web(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    def openapi() -> dict[str, Any]:
        # Problem responses are sent as application/problem+json only; FastAPI would put
        # their schema under application/json.
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for item in schema.get("paths", {}).values():
                for op in item.values():
                    for status, response in op.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[:1] in ("4", "5") and PROBLEM in content:
                            content[PROBLEM] = content.pop("application/json", content[PROBLEM])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
