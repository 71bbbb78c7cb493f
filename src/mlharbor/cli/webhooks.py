"""``mlharbor webhooks``: endpoints that receive registry events, their delivery log, and delivery."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import as_dict, console, print_info, print_json, print_records

app = typer.Typer(help="Webhooks for registry events: create, list, delete, delivery log, deliver.",
                  no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


@app.command()
def create(ctx: typer.Context, name: Annotated[str, typer.Argument(help="A label for the webhook.")],
           url: Annotated[str, typer.Argument(help="https:// endpoint receiving POSTed events.")],
           event: Annotated[list[str] | None, typer.Option(help="Event kind to send (repeatable; default all).")]
           = None,
           model: Annotated[str | None, typer.Option(help="Only events of this model (catalog.schema.model).")]
           = None) -> None:
    """Register a webhook and print its signing secret (shown once)."""
    with open_workspace(ctx, remote=False) as ws:
        hook, secret = ws.models.webhooks.create(name, url, event, model)
    console().print(f"webhook {hook.id} → {hook.url}\nsigning secret (shown once): {secret}", markup=False)


@app.command("ls")
def list_hooks(ctx: typer.Context, as_json: Json = False) -> None:
    """Webhooks you may manage."""
    with open_workspace(ctx, remote=False) as ws:
        hooks = ws.models.webhooks.list()
    records = [{**as_dict(h), "events": ", ".join(h.events) or "all"} for h in hooks]
    if as_json:
        print_json(records)
        return
    print_records(records, ["id", "name", "url", "model_name", "events", "active"], empty="no webhooks")


@app.command("rm")
def delete(ctx: typer.Context, hook_id: Annotated[str, typer.Argument(help="Webhook id.")]) -> None:
    """Delete a webhook (its delivery log stays)."""
    with open_workspace(ctx, remote=False) as ws:
        ws.models.webhooks.delete(hook_id)
    print_info(f"deleted webhook {hook_id}")


@app.command()
def deliveries(ctx: typer.Context, hook_id: Annotated[str, typer.Argument(help="Webhook id.")],
               status: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
               as_json: Json = False) -> None:
    """The delivery log of a webhook, newest event first."""
    with open_workspace(ctx, remote=False) as ws:
        log = ws.models.webhooks.deliveries(hook_id, status)
    records = [as_dict(d) for d in log]
    if as_json:
        print_json(records)
        return
    print_records(records, ["id", "event_id", "status", "attempts", "last_status_code", "last_error",
                            "delivered_at"], empty="no deliveries")


@app.command()
def deliver(ctx: typer.Context,
            loop: Annotated[bool, typer.Option("--loop", help="Keep delivering until interrupted.")] = False,
            interval: Annotated[float, typer.Option(help="Seconds between passes with --loop.")] = 1.0) -> None:
    """Deliver pending events now (one pass), or continuously with --loop."""
    with open_workspace(ctx, remote=False) as ws:
        dispatcher = ws.services.dispatcher()
        if not loop:
            counts = dispatcher.run_once()
            print_info(", ".join(f"{k} {v}" for k, v in counts.items()))
            return
        stop = threading.Event()
        try:
            dispatcher.run_forever(stop, interval)
        except KeyboardInterrupt:
            stop.set()
