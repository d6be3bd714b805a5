"""Errors on console and portal pages: an HTML page in the reader's language (never a stack
trace, never JSON), a redirect to sign-in, or a 403 page."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from setia.web.deps import SignInRequired, WebForbidden
from setia.web.i18n import N_
from setia.web.templating import render

log = logging.getLogger("setia.web")

WEB_PREFIXES = ("/console", "/portal")


def is_web(request: Request) -> bool:
    """A page request (console or portal), not a JSON endpoint under them (``/api/``)."""
    path = request.url.path
    return path.startswith(WEB_PREFIXES) and "/api/" not in path


def redirect(request: Request, location: str, status_code: int = 303) -> Response:
    """A redirect that htmx follows as a full page load; queued cookies are set on it."""
    if request.headers.get("hx-request"):
        response: Response = Response(status_code=200, headers={"HX-Redirect": location})
    else:
        response = RedirectResponse(location, status_code=status_code)
    for args in getattr(request.state, "set_cookies", None) or []:
        response.set_cookie(**args)
    return response


def sign_in_required(request: Request, exc: SignInRequired) -> Response:
    return redirect(request, exc.location)


# English msgids; the catalogs (locales/*/core.po) translate them.
TITLES = {
    400: N_("Something in the request was wrong"),
    403: N_("You may not do this"),
    404: N_("Page not found"),
    405: N_("Page not found"),
    409: N_("This could not be done"),
    413: N_("The upload is too large"),
    422: N_("Some input needs fixing"),
    500: N_("Something went wrong on our side"),
    503: N_("The service is busy; please try again"),
}


def page(request: Request, status: int, detail: str = "") -> HTMLResponse:
    """The error page; ``detail`` is shown as text (escaped) under the title."""
    web = getattr(request.state, "web", None)
    if web is not None:
        request.state.lang = web.lang
        try:
            _ = web.tenant.name, web.staff and web.staff.name  # still loaded?
        except Exception:
            # The request's database session was rolled back and closed before this handler
            # ran (an unexpected error): draw the page without the signed-in chrome.
            request.state.web = None
    try:
        return render(
            request,
            "error.html",
            {"status": status, "title": TITLES.get(status, TITLES[400]), "detail": detail},
            status_code=status,
        )
    except Exception:  # the error page itself must never fail
        log.exception("error page failed")
        return HTMLResponse("<h1>Error</h1>", status_code=status)
    finally:
        if web is not None:
            # An exception handler runs after the request's session was closed; anything the
            # page read (the top bar's program list) began a new transaction on it, which on
            # SQLite holds the write lock until the session is garbage-collected. Nothing
            # follows the error page: close it now.
            web.session.close()


def forbidden(request: Request, exc: WebForbidden) -> HTMLResponse:
    from setia.web.templating import translate

    web = getattr(request.state, "web", None)
    lang = getattr(web, "lang", "id") or "id"
    if exc.reason == "csrf":
        detail = translate(
            lang,
            "The form had expired or did not come from this site. Reload the page and try again. Nothing was saved.",
        )
    else:
        detail = translate(lang, "Your role does not allow this. Ask an owner or admin.")
    return page(request, 403, detail)
