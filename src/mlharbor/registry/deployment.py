"""Deployment jobs: a model's path to Production as a job — evaluation, then a transition request
(which runs the compliance checks), then an approval gate that **waits** for a person, then the
promotion that the approval carries out.

``deployment_job("dev.ml.churn", data="dev.training.churn_holdout", label="churned")`` builds it;
``ws.jobs.deploy(job)`` binds it to the model, and a ``ModelEvent`` trigger (``model_version.registered``)
runs it for every new version. The tasks (in :mod:`mlharbor.task_runtime`, which may open the
workspace) run on the job's executor as the run's principal:

1. ``evaluate`` — ``ws.evaluate`` of the latest version (or the one given) against the champion; fails
   (and stops the job) unless blessed;
2. ``request`` — ``request_transition`` to the stage; the compliance checks run now;
3. ``approval`` — a waiting task until an ML engineer approves (the version moves) or rejects.
"""

from __future__ import annotations

from typing import Any

from mlharbor.errors import InvalidArgument
from mlharbor.jobs.definitions import Dependency, Job, Task, TaskKind, check_key
from mlharbor.jobs.triggers import ModelEvent

RUNTIME = "mlharbor.task_runtime"


def deployment_job(model: str, data: str, label: str, *, problem_type: str = "classification",
                   stage: str = "Production", thresholds: dict[str, dict[str, Any]] | None = None,
                   name: str | None = None, on_new_versions: bool = True, timeout_s: float | None = None) -> Job:
    """The deployment job of ``model``: evaluate on ``data`` (a table or SQL) → request ``stage`` (checks) →
    wait for approval. With ``on_new_versions`` it runs for each newly registered version."""
    if model.count(".") != 2:
        raise InvalidArgument("a deployment job names its model as catalog.schema.model")
    job_name = check_key(name or f"deploy_{model.replace('.', '_')}", "job name")
    tasks = [
        Task("evaluate", TaskKind.PYTHON, f"{RUNTIME}:evaluate_version",
             parameters={"model": model, "data": data, "label": label, "problem_type": problem_type,
                         "version": "{{job.parameters.version}}", "thresholds": thresholds or {}}),
        Task("request", TaskKind.PYTHON, f"{RUNTIME}:request_transition", depends_on=(Dependency("evaluate"),),
             parameters={"model": model, "version": "{{tasks.evaluate.values.version}}", "stage": stage}),
        Task("approval", TaskKind.APPROVAL, depends_on=(Dependency("request"),),
             parameters={"request_id": "{{tasks.request.values.request_id}}"}),
    ]
    trigger = ModelEvent(model, ("model_version.registered",)) if on_new_versions else None
    return Job(job_name, tasks, parameters={"version": "latest"}, timeout_s=timeout_s, trigger=trigger,
               description=f"evaluate, check and promote new versions of {model} to {stage} after approval")
