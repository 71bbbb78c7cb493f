"""The process side of job tasks: running an attempt, with the workspace at hand.

``python -m mlharbor.task_runtime SPEC.json`` runs one attempt for the subprocess executor: the spec
names the task kind, target and parameters; the result (``{"ok", "values" | "error"}``) goes to the
file named in the spec; stdout and stderr go where the executor pointed them (log files). SQL tasks
and the built-in deployment tasks open the workspace of the project as the run's principal, which
is why this module sits above :mod:`mlharbor.workspace` and not in :mod:`mlharbor.jobs`.

A python or script task needs none of that, so the workspace (and with it pydantic, SQLAlchemy,
pyarrow, …) is imported only by the tasks that open it: starting an attempt costs little more
than starting Python.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlharbor.core.recording import recording
from mlharbor.errors import InvalidArgument, MlharborError, UserCodeError
from mlharbor.jobs.context import TaskContext, current, run_local, task_context

if TYPE_CHECKING:
    from mlharbor.workspace import Workspace


def open_workspace(ctx: TaskContext | None = None) -> Workspace:
    """The workspace of the running task, acting as the run's principal."""
    from mlharbor.workspace import Workspace

    ctx = ctx or current()
    return Workspace.open(ctx.work_dir, target=ctx.target, principal=ctx.principal)


def run_sql(query: str, ctx: TaskContext) -> dict[str, Any]:
    """Run DuckDB SQL over the lake; values: the row count and the first row."""
    with open_workspace(ctx) as ws:
        table = ws.sql(query)
    rows = table.slice(0, 1).to_pylist()
    first = json.loads(json.dumps(rows[0], default=str)) if rows else None
    return {"rows": table.num_rows, "first_row": first}


def run_invocation(kind: str, target: str, parameters: dict[str, Any], work_dir: str | None = None,
                   target_name: str | None = None, principal: str | None = None,
                   **notebook: Any) -> dict[str, Any]:
    """Run one attempt of a python, script, sql or notebook task; returns its values. ``notebook``:
    ``notebook_output`` and ``timeout_s`` of a notebook task (:func:`mlharbor.jobs.context.run_local`)."""
    if kind == "sql":
        ctx = TaskContext(work_dir, target_name, principal)
        with task_context(ctx):
            return run_sql(target, ctx)
    return run_local(kind, target, parameters, work_dir, target_name, principal, **notebook)


# --- built-in tasks of deployment jobs (mlharbor.registry.deployment) ------------------------------


def evaluate_version(model: str, data: str, label: str, problem_type: str = "classification", version: Any = None,
                     thresholds: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Evaluate a version against the champion; raises unless blessed. Values: version, blessed, metrics."""
    from mlharbor.evaluation import Threshold

    with open_workspace() as ws:
        number = int(version) if version not in (None, "", "latest") else ws.models.versions(model)[-1].version
        limits = {metric: Threshold(**spec) for metric, spec in (thresholds or {}).items()}
        result = ws.evaluate(model, data, label, problem_type, version=number, thresholds=limits)
    if not result.blessed:
        raise InvalidArgument(f"{model} v{number} is not blessed: {'; '.join(result.reasons[:3])}")
    return {"version": number, "blessed": True, "metrics": dict(result.metrics)}


def request_transition(model: str, version: Any, stage: str = "Production", comment: str = "") -> dict[str, Any]:
    """Request the transition (the model's compliance checks run now). Values: request_id, checks_passed."""
    with open_workspace() as ws:
        req = ws.models.request_transition(model, int(version), stage, comment or "requested by a deployment job")
        checks = ws.models.get_version(model, int(version)).checks or {}
    return {"request_id": req.id, "version": int(version), "stage": req.to_stage.value,
            "checks_passed": bool(checks.get("passed"))}


def main(argv: list[str]) -> int:
    """Run the attempt described by the spec file ``argv[0]``; exit status 0 when it succeeded.
    ``--zygote FD`` instead serves the subprocess executor as its warm zygote on socket ``FD``,
    forking attempts that run this function (:mod:`mlharbor.jobs.executors.zygote`)."""
    if argv[:1] == ["--zygote"]:
        from mlharbor.jobs.executors.zygote import serve

        serve(int(argv[1]), main, argv0=__file__)
        return 0
    spec = json.loads(Path(argv[0]).read_text())
    result_file = Path(spec["result_file"])
    sys.path.insert(0, spec.get("cwd") or os.getcwd())
    with recording(process_wide=True) as io:
        try:
            values = run_invocation(spec.get("kind", "python"), spec["target"], spec["parameters"], spec.get("cwd"),
                                    spec.get("target_name"), spec.get("principal"), **spec.get("options", {}))
            out: dict[str, Any] = {"ok": True, "values": values}
        except UserCodeError as exc:
            out = {"ok": False, "error": f"{exc.message}\n{exc.original_traceback}"}
        except MlharborError as exc:
            out = {"ok": False, "error": exc.message}
        except BaseException:
            out = {"ok": False, "error": traceback.format_exc()}
    out["io"] = io.to_dict()
    sys.stdout.flush()
    sys.stderr.flush()
    partial = result_file.with_suffix(".partial")
    partial.write_text(json.dumps(out, default=str))
    os.replace(partial, result_file)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
