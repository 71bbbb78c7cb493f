"""``mlharbor models``: registered models, versions and their stages, transition requests and
approvals, rollback, model cards."""

from __future__ import annotations

from typing import Annotated

import typer

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import as_dict, console, print_info, print_json, print_records

app = typer.Typer(help="Registered models: versions, stages, transition requests, approvals, rollback, cards.",
                  no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
Name = Annotated[str, typer.Argument(help="Registered model name, e.g. dev.ml.churn.")]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Why (kept with the request and in the history).")]


@app.command("ls")
def list_models(ctx: typer.Context, catalog: Annotated[str | None, typer.Option(help="Only this catalog.")] = None,
                as_json: Json = False) -> None:
    """Registered models you may read."""
    with open_workspace(ctx) as ws:
        models = ws.models.list_models(catalog)
    records = [as_dict(m) for m in models]
    if as_json:
        print_json(records)
        return
    print_records(records, ["name", "owner", "description", "updated_at"], empty="no registered models")


@app.command()
def versions(ctx: typer.Context, name: Name,
             stage: Annotated[str | None, typer.Option(help="Only versions in this stage.")] = None,
             as_json: Json = False) -> None:
    """Versions of a model with their stage, run and checks."""
    with open_workspace(ctx) as ws:
        found = ws.models.versions(name, stage)
    records = [
        {**as_dict(v), "stage": v.stage.value, "blessed": (v.evaluation or {}).get("blessed", ""),
         "checks": "" if v.checks is None else ("passed" if v.checks.get("passed") else "failed")}
        for v in found
    ]
    if as_json:
        print_json([{k: v for k, v in r.items() if k not in ("manifest",)} for r in records])
        return
    print_records(records, ["version", "stage", "run_id", "flavor", "blessed", "checks", "created_by", "created_at"],
                  empty=f"{name} has no versions")


@app.command()
def request(ctx: typer.Context, name: Name, version: Annotated[int, typer.Argument(help="Version number.")],
            stage: Annotated[str, typer.Argument(help="Staging, Production, Archived or None.")],
            comment: Comment = "", as_json: Json = False) -> None:
    """Request a stage transition; it waits for an approver."""
    with open_workspace(ctx) as ws:
        req = ws.models.request_transition(name, version, stage, comment)
    if as_json:
        print_json(as_dict(req))
        return
    print_info(f"requested {req.to_stage.value} for {req.name} v{req.version}: request {req.id}")


@app.command()
def requests(ctx: typer.Context, name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
             status: Annotated[str, typer.Option(help="pending, approved, rejected, cancelled or all.")] = "pending",
             as_json: Json = False) -> None:
    """Transition requests (pending ones by default)."""
    with open_workspace(ctx) as ws:
        found = ws.models.requests(name, status=None if status == "all" else status)
    records = [{**as_dict(r), "to_stage": r.to_stage.value, "status": r.status.value} for r in found]
    if as_json:
        print_json(records)
        return
    print_records(records, ["id", "name", "version", "to_stage", "status", "requested_by", "requested_at", "comment"],
                  empty="no transition requests")


@app.command()
def approve(ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request id.")],
            comment: Comment = "") -> None:
    """Approve a pending request and move the version."""
    with open_workspace(ctx) as ws:
        moved = ws.models.approve(request_id, comment)
    print_info(f"{moved.name} v{moved.version} is now in {moved.stage.value}")


@app.command()
def reject(ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request id.")],
           comment: Comment = "") -> None:
    """Reject a pending request."""
    with open_workspace(ctx) as ws:
        closed = ws.models.reject(request_id, comment)
    print_info(f"rejected request {closed.id} ({closed.name} v{closed.version} → {closed.to_stage.value})")


@app.command()
def cancel(ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request id.")],
           comment: Comment = "") -> None:
    """Withdraw a pending request."""
    with open_workspace(ctx) as ws:
        closed = ws.models.cancel(request_id, comment)
    print_info(f"cancelled request {closed.id}")


@app.command()
def rollback(ctx: typer.Context, name: Name, comment: Comment = "") -> None:
    """Return Production (the champion) to the previous Production version."""
    with open_workspace(ctx) as ws:
        moved = ws.models.rollback(name, comment)
    print_info(f"{moved.name}: champion is version {moved.version} again")


@app.command()
def history(ctx: typer.Context, name: Name,
            version: Annotated[int | None, typer.Option(help="Only this version.")] = None,
            as_json: Json = False) -> None:
    """Every stage change, oldest first."""
    with open_workspace(ctx) as ws:
        changes = ws.models.history(name, version)
    records = [{**as_dict(c), "from_stage": c.from_stage.value, "to_stage": c.to_stage.value} for c in changes]
    if as_json:
        print_json(records)
        return
    print_records(records, ["version", "from_stage", "to_stage", "actor", "time", "comment"], empty="no stage changes")


@app.command()
def card(ctx: typer.Context, name: Name,
         version: Annotated[str, typer.Argument(help="Version number, alias (champion) or stage.")] = "champion",
         ) -> None:
    """The model card (markdown), generated from what is recorded now."""
    with open_workspace(ctx) as ws:
        text = ws.models.card(name, version)
    console().print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def checks(ctx: typer.Context, name: Name,
           version: Annotated[str, typer.Argument(help="Version number, alias (champion) or stage.")],
           run: Annotated[bool, typer.Option("--run", help="Run the model's checks now (else show the last report).")]
           = False,
           as_json: Json = False) -> None:
    """The compliance-check report of a version (run on each Staging/Production request, or with --run)."""
    with open_workspace(ctx) as ws:
        report = ws.models.run_checks(name, version) if run else (ws.models.get_version(name, version).checks or {})
    if as_json:
        print_json(report)
        return
    if not report:
        print_info(f"no checks have run on {name} {version} yet; run them with --run")
        return
    records = [{"check": r["name"], "passed": "✓" if r["passed"] else "✗", "detail": r.get("detail", "")}
               for r in report.get("results", [])]
    print_records(records, ["check", "passed", "detail"])
    print_info(f"{'passed' if report.get('passed') else 'failed'} at {report.get('ran_at', '?')}")
