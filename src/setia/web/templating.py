"""Jinja2 environments (one per language, so translations are thread-safe) and ``render``.

Templates live in ``web/templates``: ``console/`` (admin console), ``portal/`` (member
portal), ``macros/`` (form fields and shared pieces). Autoescaping is on for every template:
a member named ``<script>`` is shown as text. Never mark user input ``|safe``.

Every template gets: ``request``, ``lang``, ``tz``, ``_``/``gettext``/``ngettext`` (newstyle:
``_("Hello %(name)s", name=x)``), ``csrf_token``, ``web`` (the WebContext: tenant, staff or
member), ``can(permission)``, the filters ``money(currency)``, ``num``, ``pct``, ``when``,
``day``, and the globals ``static(path)``, ``qr_svg(text)``, ``languages``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import segno
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from setia import __version__
from setia.web import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"


def qr_svg(text: str, scale: int = 6) -> Markup:
    """A QR code as inline SVG (drawn on the server; nothing fetched)."""
    svg = segno.make(text, error="m").svg_inline(scale=scale, dark="#111827", light="#ffffff")
    return Markup(svg)


def static(path: str) -> str:
    return f"/static/{path}?v={__version__}"


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "xml", "svg"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.catalog(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        static=static,
        qr_svg=qr_svg,
        languages=[(code, i18n.LANGUAGE_NAMES[code]) for code in i18n.LOCALES],
        lang=lang,
        phone_example=i18n.phone_example,
    )
    env.filters.update(
        money=lambda amount, currency: i18n.money(amount, currency, lang),
        num=lambda value, digits=0: i18n.number(value, lang, digits),
        pct=lambda value, digits=1: i18n.percent(value, lang, digits),
    )
    return env


def translate(lang: str, message: str, **values: Any) -> str:
    """``_()`` for Python code (flash messages, form errors): the message in ``lang``, with
    ``%(name)s`` placeholders filled."""
    text = i18n.catalog(lang).gettext(message)
    return text % values if values else text


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a page or an htmx fragment in the request's language (``request.state.web``,
    set by the console/portal dependencies; English/Indonesian defaults otherwise)."""
    web = getattr(request.state, "web", None)
    lang = getattr(web, "lang", None) or i18n.choose_locale(
        getattr(request.state, "lang", None),
        request.cookies.get("setia_lang"),
        accept_language=request.headers.get("accept-language"),
    )
    tz = getattr(web, "tz", None) or "Asia/Jakarta"
    env = environment(lang)
    ctx: dict[str, Any] = {
        "request": request,
        "web": web,
        "lang": lang,
        "tz": tz,
        "csrf_token": getattr(web, "csrf_token", "") or getattr(request.state, "anon_csrf", ""),
        "can": (lambda permission: bool(web and web.can(permission))),
        "when": lambda value, fmt="medium": i18n.when(value, lang, tz, fmt),
        "day": lambda value, fmt="medium": i18n.day(value, lang, tz, fmt),
        "path": request.url.path,
        "flash": getattr(request.state, "flash", None) or _read_flash(request),
        "console_programs": lambda: _console_programs(web),
    }
    if context:
        ctx.update(context)
    html = env.get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    pending = getattr(request.state, "set_cookies", None)
    if pending:
        for args in pending:
            response.set_cookie(**args)
    if request.cookies.get("setia_flash") and not any(
        a.get("key") == "setia_flash" for a in pending or []
    ):
        response.delete_cookie("setia_flash", path="/")
    return response


def _console_programs(web: Any) -> tuple[list[Any], Any]:
    """The top bar's program picker: the tenant's programs and the current one (no list
    when there is only one, or outside the console)."""
    if web is None or web.staff is None:
        return [], None
    from setia.web.console.current import current_program, tenant_programs

    listed = tenant_programs(web)
    if len(listed) < 2:
        return [], None
    return listed, current_program(web)


def _read_flash(request: Request) -> dict[str, str] | None:
    from urllib.parse import unquote

    raw = request.cookies.get("setia_flash")
    if not raw or ":" not in raw:
        return None
    kind, text = raw.split(":", 1)
    if kind not in ("ok", "info", "warn", "error"):
        kind = "info"
    return {"kind": kind, "text": unquote(text)[:500]}
