"""``mlharbor audit``: the append-only audit log, newest first (admins)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import as_dict, print_json, print_records
from mlharbor.errors import InvalidArgument

_DECISION_STYLE = {"allowed": "green", "denied": "bold red"}
COLUMNS = ["id", "time", "actor", "decision", "action", "resource", "details"]


def audit(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option(help="Only entries by this principal.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. table.append.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only this resource, e.g. table:prod.raw.t.")] = None,
    decision: Annotated[str | None, typer.Option(help="allowed or denied.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Who did what, and every allowed or denied decision, newest first."""
    if decision is not None and decision not in ("allowed", "denied"):
        raise InvalidArgument(f"--decision must be 'allowed' or 'denied', not {decision!r}")
    with open_workspace(ctx) as ws:
        log = ws.access.audit_log(principal=principal, action=action, resource=resource, decision=decision,
                                  limit=limit)
    entries = [as_dict(e) for e in log]
    if as_json:
        print_json(entries)
        return
    for e in entries:
        e["decision"] = Text(str(e["decision"]), style=_DECISION_STYLE.get(str(e["decision"]), ""))
    print_records(entries, COLUMNS, empty="no audit entries match")
