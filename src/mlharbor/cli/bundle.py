"""``mlharbor bundle``: validate, plan, deploy, run and destroy the project's ``mlharbor.yml``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from mlharbor.cli._context import state
from mlharbor.cli._output import as_dict, console, print_info, print_json, print_warning
from mlharbor.cli.jobs import parse_params, show_tasks
from mlharbor.errors import InvalidArgument

if TYPE_CHECKING:
    from mlharbor.bundles import BundleDeployment

app = typer.Typer(help="Bundles (mlharbor.yml): validate, plan, deploy, run, destroy — per target.",
                  no_args_is_help=True)
Target = Annotated[str | None, typer.Option("--target", "-t", help="Bundle target (default: the one marked "
                                                                  "default, else the first).")]
Vars = Annotated[list[str] | None, typer.Option("--var", help="NAME=VALUE overriding a bundle variable "
                                                             "(JSON values parsed; also MLHARBOR_VAR_NAME).")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@contextmanager
def _deployment(ctx: typer.Context, target: str | None, variables: list[str] | None) -> Iterator[BundleDeployment]:
    from mlharbor.bundles import BundleDeployment
    from mlharbor.jobs.bundle import BundleFile
    from mlharbor.workspace import Workspace

    root = state(ctx).directory
    bundle = BundleFile.load(root)
    name = target or bundle.default_target()
    if name not in bundle.targets:
        raise InvalidArgument(f"bundle {bundle.name} has no target {name!r}; it has {', '.join(bundle.targets)}")
    ws_target = str(bundle.targets[name].get("workspace_target") or name)
    with Workspace.open(root, target=ws_target) as ws:
        yield BundleDeployment.open(ws, bundle, name, parse_params(variables))


def _show(lines: list[str]) -> None:
    out = console()
    for line in lines:
        out.out(line, highlight=False)


@app.command()
def validate(ctx: typer.Context, target: Target = None, var: Vars = None, as_json: Json = False) -> None:
    """Check the bundle for a target: syntax, variables, references, job graphs; list what it defines."""
    with _deployment(ctx, target, var) as dep:
        b = dep.bundle
        warnings = _import_warnings(dep)
        if as_json:
            print_json({"bundle": b.name, "target": b.target, "workspace_target": b.workspace_target,
                        "mode": b.mode, "run_as": b.run_as, "variables": b.variables,
                        "resources": {r: name for r, (_, name, _) in b.resources().items()}, "warnings": warnings})
            return
        print_info(f"bundle {b.name}, target {b.target} (workspace target {b.workspace_target}"
                   f"{', mode ' + b.mode if b.mode else ''}{', run as ' + b.run_as if b.run_as else ''}): valid")
        _show([f"  {r:<32} {name}" for r, (_, name, _) in b.resources().items()])
        for w in warnings:
            print_warning(w)


def _import_warnings(dep: BundleDeployment) -> list[str]:
    """Python task targets whose module cannot be found from the project directory."""
    root = str(dep.ws.settings.project_root) if dep.ws.settings else "."
    sys.path.insert(0, root)
    try:
        found: list[str] = []
        for key, job in dep.bundle.jobs.items():
            for t in job.tasks:
                for task in (t, t.nested) if t.nested else (t,):
                    if task.kind.value == "python":
                        module = task.target.partition(":")[0]
                        try:
                            spec = importlib.util.find_spec(module)
                        except (ImportError, ValueError):
                            spec = None
                        if spec is None:
                            found.append(f"jobs.{key}.{task.key}: module {module} is not importable from {root}")
        return found
    finally:
        sys.path.remove(root)


@app.command()
def plan(ctx: typer.Context, target: Target = None, var: Vars = None, as_json: Json = False) -> None:
    """What deploy would change: + create, ~ update, - delete (unchanged resources too)."""
    from mlharbor.bundles import format_plan

    with _deployment(ctx, target, var) as dep:
        changes = dep.plan()
    if as_json:
        print_json([as_dict(c) for c in changes])
        return
    _show(format_plan(changes))
    pending = sum(c.action != "unchanged" for c in changes)
    print_info(f"{pending} change(s) to deploy" if pending else "nothing to deploy: the target is up to date")


@app.command()
def deploy(ctx: typer.Context, target: Target = None, var: Vars = None, as_json: Json = False) -> None:
    """Deploy the bundle's jobs, experiments and registered models to a target (idempotent)."""
    from mlharbor.bundles import format_plan

    with _deployment(ctx, target, var) as dep:
        changes = dep.deploy()
        name, tname = dep.bundle.name, dep.bundle.target
    if as_json:
        print_json([as_dict(c) for c in changes])
        return
    _show(format_plan(changes))
    applied = sum(c.action != "unchanged" for c in changes)
    print_info(f"deployed bundle {name} to {tname}: {applied} change(s)" if applied
               else f"bundle {name} is already deployed to {tname} as defined")


@app.command()
def run(ctx: typer.Context, key: Annotated[str, typer.Argument(help="The job's key in the bundle.")],
        target: Target = None, var: Vars = None,
        param: Annotated[list[str] | None, typer.Option("--param", help="Job parameter NAME=VALUE.")] = None,
        executor: Annotated[str, typer.Option(help="subprocess (default) or in_process.")] = "subprocess",
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Rerun cached tasks.")] = False,
        as_json: Json = False) -> None:
    """Run a deployed bundle job to the end; exits 1 when the run did not succeed."""
    with _deployment(ctx, target, var) as dep:
        result = dep.run(key, parse_params(param), executor=executor, force=no_cache)
        if as_json:
            print_json({**as_dict(result), "tasks": [as_dict(t) for t in dep.ws.jobs.task_runs(result.id)]})
        else:
            show_tasks(dep.ws, result.id)
            print_info(f"run {result.id} of {result.job_name}: {result.state}"
                       f"{' — ' + result.message if result.message else ''}")
    if result.state != "succeeded":
        raise typer.Exit(1)


@app.command()
def destroy(ctx: typer.Context, target: Target = None, var: Vars = None,
            yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Remove what the bundle deployed to a target (jobs, experiments, models without versions)."""
    with _deployment(ctx, target, var) as dep:
        if not yes and not typer.confirm(f"destroy bundle {dep.bundle.name} in target {dep.bundle.target}?"):
            raise typer.Exit(1)
        done = dep.destroy()
    _show([f"- {c.resource:<32} {c.name}  ({c.detail})" for c in done])
    print_info(f"removed {sum(c.detail == 'deleted' for c in done)} resource(s)" if done
               else "nothing deployed by this bundle in that target")

