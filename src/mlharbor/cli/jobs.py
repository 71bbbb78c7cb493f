"""``mlharbor jobs``: deploy, run and inspect jobs; logs; repair.

With ``MLHARBOR_URL`` set (or ``--url``) every command but ``recover`` goes through that server, which
then drives the runs: task attempts run on the server machine with the server project's code.
``deploy`` imports the job definition here and sends it.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Annotated, Any

import typer

from mlharbor.cli._context import location, open_workspace, state
from mlharbor.cli._output import as_dict, console, print_info, print_json, print_records
from mlharbor.errors import InvalidArgument

app = typer.Typer(help="Jobs: deploy, run, list runs, show a run, logs, repair (through the server when "
                  "MLHARBOR_URL is set).", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
Executor = Annotated[str, typer.Option(help="Where task attempts run: subprocess (default), in_process, or ray "
                                             "(extra mlharbor[ray]; MLHARBOR_RAY_ADDRESS or RAY_ADDRESS picks the "
                                             "cluster, else a local Ray).")]


def parse_params(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--param takes NAME=VALUE, not {item!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def show_tasks(ws: Any, run_id: str) -> None:
    tasks = ws.jobs.task_runs(run_id)
    print_records([{"task": t.task_key, "state": t.state, "attempts": t.attempts,
                    "values": json.dumps(t.values) if t.values else "", "tables": _io_summary(t.io),
                    "error": t.error.strip().splitlines()[-1] if t.error.strip() else ""} for t in tasks],
                  ["task", "state", "attempts", "values", "tables", "error"])


def _io_summary(io: dict[str, Any]) -> str:
    """``read a@3, wrote b@4, 1 MLflow run`` (what the task touched, as recorded)."""
    parts = [f"read {', '.join(f'{t}@{v}' for t, v in io.get('read', {}).items())}" if io.get("read") else "",
             f"wrote {', '.join(f'{t}@{v}' for t, v in io.get('written', {}).items())}" if io.get("written") else "",
             f"{len(io['mlflow_runs'])} MLflow run(s)" if io.get("mlflow_runs") else ""]
    return "; ".join(p for p in parts if p)


@app.command("ls")
def list_jobs(ctx: typer.Context, as_json: Json = False) -> None:
    """Deployed jobs."""
    with open_workspace(ctx) as ws:
        names = ws.jobs.list()
    if as_json:
        print_json(names)
        return
    print_records([{"job": n} for n in names], ["job"], empty="no jobs deployed")


@app.command()
def deploy(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="module:attribute of a Job object, e.g. "
                                                                       "pipelines.churn:job")]) -> None:
    """Deploy a job defined in Python (the project directory is importable)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise InvalidArgument(f"give the job as module:attribute, not {ref!r}")
    sys.path.insert(0, str(state(ctx).directory))
    try:
        job = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgument(f"cannot import {ref}: {exc}") from None
    with open_workspace(ctx) as ws:
        changed = ws.jobs.deploy(job)
        where = f" to {location(ws)}" if ws.url else ""
    print_info(f"deployed {job.name}{where}" if changed else f"{job.name} is already deployed as defined{where}")


@app.command()
def run(ctx: typer.Context, name: Annotated[str, typer.Argument(help="A deployed job.")],
        param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE (JSON values parsed).")] = None,
        executor: Executor = "subprocess",
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Rerun cached tasks (and refresh their cache).")]
        = False,
        no_wait: Annotated[bool, typer.Option("--no-wait", help="Start the run, print its id and return (the "
                                                               "server drives it; locally, use a server).")] = False,
        as_json: Json = False) -> None:
    """Run a deployed job to the end and show its tasks; exits 1 when the run did not succeed."""
    with open_workspace(ctx) as ws:
        if no_wait:
            if ws.url is None:
                raise InvalidArgument("--no-wait needs a server (MLHARBOR_URL or --url) to drive the run; "
                                      "locally the run ends with this command")
            started = ws.jobs.run(name, parse_params(param), executor=executor, force=no_cache, wait=False)
            if as_json:
                print_json(as_dict(started))
            else:
                console().out(started.id)
                print_info(f"run {started.id} of {name} started on {location(ws)}; follow it with "
                           f"`mlharbor jobs show {started.id}` or `mlharbor jobs logs {started.id} TASK --follow`")
            return
        result = ws.jobs.run(name, parse_params(param), executor=executor, force=no_cache)
        if as_json:
            print_json({**as_dict(result), "tasks": [as_dict(t) for t in ws.jobs.task_runs(result.id)]})
        else:
            show_tasks(ws, result.id)
            print_info(f"run {result.id}: {result.state}{' — ' + result.message if result.message else ''}")
    if result.state != "succeeded":
        raise typer.Exit(1)


@app.command()
def runs(ctx: typer.Context, name: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
         limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20, as_json: Json = False) -> None:
    """Runs, newest first."""
    with open_workspace(ctx) as ws:
        found = ws.jobs.runs(name, limit)
    records = [{k: v for k, v in as_dict(r).items() if k != "definition"} for r in found]
    if as_json:
        print_json(records)
        return
    print_records(records, ["id", "job_name", "state", "trigger", "created_at", "ended_at", "repairs", "message"],
                  empty="no runs")


@app.command()
def show(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="Run id.")], as_json: Json = False) -> None:
    """A run's tasks: state, attempts, values, last error."""
    with open_workspace(ctx) as ws:
        info = ws.jobs.get_run(run_id)
        if as_json:
            print_json({**as_dict(info), "tasks": [as_dict(t) for t in ws.jobs.task_runs(run_id)]})
            return
        show_tasks(ws, run_id)
    print_info(f"run {info.id} of {info.job_name}: {info.state}")


@app.command()
def logs(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="Run id.")],
         task: Annotated[str, typer.Argument(help="Task key.")],
         stderr: Annotated[bool, typer.Option("--stderr", help="Show stderr instead of stdout.")] = False,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing what the task writes until "
                                                                    "it ends.")] = False) -> None:
    """The output of a task's latest attempt (last 1 MB), also while it runs; --follow streams it."""
    stream = "stderr" if stderr else "stdout"
    with open_workspace(ctx) as ws:
        if not follow:
            text = ws.jobs.logs(run_id, task, stream)
            console().out(text, end="")
            return
        attempt = None
        for chunk in ws.jobs.follow_log(run_id, task, stream):
            if attempt is not None and chunk.attempt != attempt:
                print_info(f"--- attempt {chunk.attempt} ---")
            attempt = chunk.attempt
            sys.stdout.write(chunk.text)
            sys.stdout.flush()


@app.command()
def repair(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="A finished run.")],
           executor: Executor = "subprocess") -> None:
    """Rerun the failed tasks of a run and their dependents; succeeded tasks are kept."""
    with open_workspace(ctx) as ws:
        result = ws.jobs.repair(run_id, executor=executor)
        show_tasks(ws, run_id)
    print_info(f"run {result.id}: {result.state} after {result.repairs} repair(s)")
    if result.state != "succeeded":
        raise typer.Exit(1)


@app.command()
def recover(ctx: typer.Context) -> None:
    """Mark runs whose runner died as failed (lost worker), so they can be repaired. Acts on this
    machine's project: on a server's runs, run it on the server machine."""
    with open_workspace(ctx, remote=False) as ws:
        lost = ws.jobs.recover()
    print_info(f"{len(lost)} lost run(s){': ' + ', '.join(lost) if lost else ''}")


@app.command()
def cancel(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="A queued or running run.")]) -> None:
    """Cancel a run: running attempts are stopped, the rest marked cancelled."""
    with open_workspace(ctx) as ws:
        ws.jobs.cancel(run_id)
    print_info(f"cancel requested for run {run_id}")
