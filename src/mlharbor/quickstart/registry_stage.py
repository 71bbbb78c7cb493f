"""Quickstart stage 3: train on the stage-2 training set, log, register, compare with the champion,
and promote through a request and an approval.

Two principals act, as in a team: ``qs_scientist`` (data scientist) trains, logs and *requests*
Production; ``qs_engineer`` (ML engineer) *approves*. Nobody approves their own request. The
training set is split in time (the last fifth of trips is the holdout, as a model meets the
future). The candidate is compared with the current champion on the same holdout: the first run
promotes version 1; each later run trains a differently tuned challenger, which is promoted only if
it is *blessed* by ``ws.evaluate`` on the holdout: ROC AUC at least 0.6 and no lower than the
champion's on the same trips, log loss at most 0.7 (per payment type too, with the fairness gap shown).
Requesting Production runs the model's compliance checks (description, signature, artifact hashes,
a fresh-process load-and-predict, evaluation blessed); either way the quickstart shows the decision
and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from mlharbor.errors import NotFound
from mlharbor.evaluation import Threshold
from mlharbor.quickstart.features_stage import LABEL

if TYPE_CHECKING:
    import pandas as pd

    from mlharbor.features.training import TrainingSet
    from mlharbor.workspace import Workspace

MODEL = "dev.ml.generous_tip"
EXPERIMENT = "quickstart-generous-tip"
SCIENTIST = "qs_scientist"
ENGINEER = "qs_engineer"
CATEGORICAL = ["payment_type"]
HOLDOUT_SHARE = 0.2
CHECKS: dict[str, dict[str, Any]] = {"description_present": {}, "signature_present": {},
                                     "artifact_hashes_valid": {}, "loads_and_predicts": {},
                                     "evaluation_blessed": {}, "latency_budget": {"max_ms": 100}}
# Each run trains the next of these, so a re-run shows a challenger against the champion.
CANDIDATES: list[dict[str, Any]] = [
    {"max_iter": 60, "learning_rate": 0.1, "max_leaf_nodes": 31},
    {"max_iter": 150, "learning_rate": 0.08, "max_leaf_nodes": 63},
    {"max_iter": 20, "learning_rate": 0.05, "max_leaf_nodes": 7},
]


@dataclass(frozen=True)
class RegistryResult:
    version: int
    run_id: str
    auc: float
    champion_version: int | None  # before this run
    champion_auc: float | None
    promoted: bool
    reason: str


def ensure_team(ws: Workspace) -> None:
    """The quickstart's two principals (created once by the local admin)."""
    existing = {p.name for p in ws.access.list_principals()}
    for name, role in ((SCIENTIST, "data_scientist"), (ENGINEER, "ml_engineer")):
        if name not in existing:
            ws.access.create_principal(name, display_name=f"quickstart {role.replace('_', ' ')}")
            ws.access.grant(name, role)


def _split(training: TrainingSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = training.load_df().to_pandas().sort_values(["pickup_ts", "trip_id"], kind="stable")
    cut = int(len(frame) * (1 - HOLDOUT_SHARE))
    return frame.iloc[:cut], frame.iloc[cut:]


def feature_columns(training: TrainingSet) -> list[str]:
    """Model inputs: the trip's own numeric columns, the payment type and every looked-up or
    computed feature (ids and timestamps are keys, not signals)."""
    spec = training.spec
    own = ["trip_distance_km", "passenger_count", "fare_amount", *CATEGORICAL]
    return [*own, *(c for c in spec.feature_columns if c not in own)]


def make_model(params: dict[str, Any], columns: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [c for c in columns if c not in CATEGORICAL]
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                              ("num", "passthrough", numeric)])
    return Pipeline([("prep", prep), ("gbm", HistGradientBoostingClassifier(random_state=0, **params))])


@dataclass(frozen=True)
class Candidate:
    version: int
    run_id: str
    auc: float


@dataclass(frozen=True)
class Verdict:
    blessed: bool
    reason: str
    champion_version: int | None
    champion_auc: float | None
    request_id: str | None  # the Production request, made when blessed


def train_candidate(root: Any, training: TrainingSet, console: Console, model_name: str = MODEL,
                    experiment: str = EXPERIMENT) -> Candidate:
    """As the data scientist: train the next candidate on the training part, log the run and
    register the model (with the compliance checks it must pass)."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    from mlharbor.workspace import Workspace

    train, holdout = _split(training)
    columns = feature_columns(training)
    with Workspace.open(root, principal=SCIENTIST) as ds:
        try:
            previous = len(ds.models.versions(model_name))
        except NotFound:
            previous = 0
        params = CANDIDATES[previous % len(CANDIDATES)]
        with ds.tracking.start_run(experiment, run_name=f"candidate {previous + 1}") as run:
            run.log_training_set(training)
            run.log_params({**params, "features": ",".join(columns), "train_rows": len(train),
                            "holdout_rows": len(holdout)})
            model = make_model(params, columns).fit(train[columns], train[LABEL].astype(int))
            proba = model.predict_proba(holdout[columns])[:, 1]
            y = holdout[LABEL].astype(int)
            auc = float(roc_auc_score(y, proba))
            run.log_metrics({"roc_auc": auc, "accuracy": float(accuracy_score(y, proba > 0.5)),
                             "log_loss": float(log_loss(y, proba))})
            mv = ds.models.log_model(model, model_name, training_set=training, run=run, method="predict_proba",
                                     input_example=holdout[columns].head(5),
                                     description="Probability that a trip ends with a generous tip")
        ds.models.update_model(model_name, checks=CHECKS)
    console.print(f"[cyan]{SCIENTIST}[/] trained {params} on {len(train):,} trips: holdout ROC AUC "
                  f"[bold]{auc:.4f}[/]; logged run {run.run_id[:8]} and registered {model_name} v{mv.version} "
                  f"({mv.tags['mlharbor.serialization']}, {len(mv.manifest)} files hashed)")
    return Candidate(mv.version, run.run_id, auc)


def evaluate_candidate(root: Any, training: TrainingSet, version: int, console: Console,
                       model_name: str = MODEL) -> Verdict:
    """As the data scientist: evaluate the version on the holdout against the champion; when blessed,
    request Production (the compliance checks run on the request)."""
    from mlharbor.workspace import Workspace

    _, holdout = _split(training)
    with Workspace.open(root, principal=SCIENTIST) as ds:
        champion_version = _champion(ds, model_name)
        evaluation = ds.evaluate(model_name, holdout, LABEL, "classification", version=version,
                                 slices=CATEGORICAL, sensitive_columns=CATEGORICAL,
                                 thresholds={"roc_auc": Threshold(min_value=0.6, min_absolute_change=0.0),
                                             "log_loss": Threshold(max_value=0.7)})
        champion_auc = _baseline_auc(evaluation) if champion_version is not None else None
        reason = "; ".join(evaluation.reasons[:3])
        verdict = "[green]blessed[/]" if evaluation.blessed else "[red]not blessed[/]"
        console.print(f"evaluation of v{version} on the {len(holdout):,}-trip holdout"
                      f"{f' against champion v{champion_version}' if champion_version else ''}: {verdict} — {reason}")
        gaps = evaluation.fairness.get("payment_type")
        if gaps is not None and "roc_auc" in gaps.gaps:
            gap = gaps.gaps["roc_auc"]
            console.print(f"ROC AUC across payment types: {gap.min_group} {gap.min_value:.3f} … "
                          f"{gap.max_group} {gap.max_value:.3f} (gap {gap.gap:.3f})")
        request = None
        if evaluation.blessed:
            request = ds.models.request_transition(model_name, version, "Production", reason)
            checks = ds.models.get_version(model_name, version).checks or {}
            shown = ", ".join(f"{r['name']} {'✓' if r['passed'] else '✗'}" for r in checks.get("results", []))
            console.print(f"compliance checks on the request: {shown}")
    return Verdict(evaluation.blessed, reason, champion_version, champion_auc, request.id if request else None)


def approve(root: Any, request_id: str, console: Console) -> int:
    """As the ML engineer: approve the request; returns the version now in Production."""
    from mlharbor.workspace import Workspace

    with Workspace.open(root, principal=ENGINEER) as mle:
        moved = mle.models.approve(request_id, "approved by the quickstart's ML engineer")
    console.print(f"[cyan]{SCIENTIST}[/] requested Production, [cyan]{ENGINEER}[/] approved: "
                  f"v{moved.version} is the champion (models:/{moved.name}@champion)")
    return moved.version


def run_stage(ws: Workspace, training: TrainingSet, console: Console) -> RegistryResult:
    """Stage 3 as the two principals; prints each step."""
    ensure_team(ws)
    root = ws.settings.project_root if ws.settings else None
    candidate = train_candidate(root, training, console)
    verdict = evaluate_candidate(root, training, candidate.version, console)
    if verdict.request_id is not None:
        approve(root, verdict.request_id, console)
    _show_versions(ws, console)
    return RegistryResult(candidate.version, candidate.run_id, candidate.auc, verdict.champion_version,
                          verdict.champion_auc, verdict.request_id is not None, verdict.reason)


def _champion(ws: Workspace, model_name: str = MODEL) -> int | None:
    try:
        return ws.models.get_version(model_name, "champion").version
    except NotFound:
        return None


def _baseline_auc(evaluation: Any) -> float | None:
    for check in evaluation.checks:
        if check.metric == "roc_auc" and check.kind == "change" and check.baseline is not None:
            return float(check.baseline)
    return None


def _show_versions(ws: Workspace, console: Console) -> None:
    table = Table(title=f"Versions of {MODEL}")
    for col in ("version", "stage", "run", "created by"):
        table.add_column(col)
    for v in ws.models.versions(MODEL):
        table.add_row(str(v.version), v.stage.value, (v.run_id or "")[:8], v.created_by)
    console.print(table)
