"""The quickstart's pipeline as job tasks (stage 4): the bundle ``mlharbor init`` writes runs these.

``features`` → ``refresh_features`` (feature tables merged from the raw trips, the training set
saved); ``training`` → ``train`` (a challenger, as the data scientist) → ``evaluate`` (against the
champion; a Production request with its compliance checks when blessed) → a condition on
``blessed`` → ``promote`` (approved by the ML engineer). Each task opens the workspace of the run
(:func:`mlharbor.task_runtime.open_workspace`), prints what it did to its log and returns the
values the next tasks read.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from mlharbor.quickstart import features_stage, registry_stage
from mlharbor.task_runtime import open_workspace


def _console() -> Console:
    return Console(width=120, force_terminal=False, highlight=False)


def refresh_features() -> dict[str, Any]:
    """Merge the feature tables from the raw trips, publish them online and save the training set."""
    with open_workspace() as ws:
        result = features_stage.run_stage(ws, _console())
    return {"training_rows": result.training_rows, "feature_versions": result.table_versions}


def train(model: str = registry_stage.MODEL, experiment: str = registry_stage.EXPERIMENT) -> dict[str, Any]:
    """Train and register the next candidate; values: version, run_id, roc_auc."""
    with open_workspace() as ws:
        registry_stage.ensure_team(ws)
        root = ws.settings.project_root if ws.settings else None
        candidate = registry_stage.train_candidate(root, features_stage.training_set(ws), _console(), model,
                                                   experiment)
    return {"version": candidate.version, "run_id": candidate.run_id, "roc_auc": round(candidate.auc, 6)}


def evaluate(version: int, model: str = registry_stage.MODEL) -> dict[str, Any]:
    """Evaluate against the champion; request Production when blessed. Values: blessed, reason,
    request_id ("" when not blessed), champion_version."""
    with open_workspace() as ws:
        root = ws.settings.project_root if ws.settings else None
        verdict = registry_stage.evaluate_candidate(root, features_stage.training_set(ws), int(version), _console(),
                                                    model)
    return {"blessed": verdict.blessed, "reason": verdict.reason, "request_id": verdict.request_id or "",
            "champion_version": verdict.champion_version}


def promote(request_id: str) -> dict[str, Any]:
    """Approve the Production request as the ML engineer; values: the champion version."""
    with open_workspace() as ws:
        root = ws.settings.project_root if ws.settings else None
        return {"champion": registry_stage.approve(root, request_id, _console())}
