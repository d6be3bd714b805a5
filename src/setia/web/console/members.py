"""Members: search, the member page, and its actions (adjust points, assign a tier, merge, export, erase)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

from fastapi import Request  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402

from setia.web.deps import WebContext, require  # noqa: E402
from setia.web.templating import render  # noqa: E402


@router.get("/console/members")
def members_index(request: Request, web: WebContext = require("members.view")) -> HTMLResponse:
    # Placeholder until the members pages land (the shell tests use it).
    return render(request, "console/members/index.html", {})
