"""The program the console is looking at.

A tenant may run several programs (a coffee chain's loyalty program and a partner
coalition, say). Every console page about a program (dashboard, members, cashier, rules,
tiers, rewards, causes, referrals, badges, analytics) shows the *current* one: the program
chosen in the top bar's picker (a cookie, ``setia_program``, set by ``POST
/console/program``), or the tenant's default program when none was chosen or the chosen one
is not the tenant's. The picker is shown only when the tenant has more than one program.
"""

from __future__ import annotations

from sqlalchemy import select

from setia.programs import service as programs
from setia.programs.models import Program
from setia.web.deps import PROGRAM_COOKIE, WebContext, parse_uuid

__all__ = ["PROGRAM_COOKIE", "current_program", "tenant_programs"]


def current_program(web: WebContext) -> Program:
    cached = web.extra.get("current_program")
    if isinstance(cached, Program):
        return cached
    program: Program | None = None
    pid = parse_uuid(str(web.extra.get("program") or ""))
    if pid is not None:
        program = web.session.execute(
            select(Program).where(Program.tenant_id == web.tenant.id, Program.id == pid)
        ).scalar_one_or_none()
    if program is None:
        program = programs.get_program(web.session, web.tenant.id, None)
    web.extra["current_program"] = program
    return program


def tenant_programs(web: WebContext) -> list[Program]:
    """The tenant's programs, for the picker (read once per request)."""
    found = web.extra.get("programs")
    if isinstance(found, list):
        return found
    listed = programs.list_programs(web.session, web.tenant.id)
    web.extra["programs"] = listed
    return listed
