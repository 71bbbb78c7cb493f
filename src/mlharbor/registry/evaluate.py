"""``ws.evaluate``: a registered model version against its data and its champion.

The version is loaded (hashes verified) and run on ``data``; when the data lacks features the model
was trained with, its packaged feature spec looks them up point-in-time first (columns present in
the data win). The baseline (default: the current champion, when it is another version) is run on
the same data the same way. :func:`mlharbor.evaluation.evaluate_predictions` computes metrics overall
and per slice, value and change thresholds, the blessing with its reasons and fairness gaps. The
result is logged to MLflow (an evaluation run: metrics, the result as JSON, links to the version),
stored on the version, audited and announced (``evaluation.completed``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlharbor.auth.audit import record
from mlharbor.errors import InvalidArgument, NotFound
from mlharbor.registry import events
from mlharbor.registry.models import parse_model_uri

if TYPE_CHECKING:
    import pandas as pd

    from mlharbor.catalog.tables import Tables
    from mlharbor.core.entities import ModelVersionInfo
    from mlharbor.evaluation import EvaluationResult, Threshold
    from mlharbor.features.store import FeatureStore
    from mlharbor.registry.models import ModelStore
    from mlharbor.tracking.loader import PackagedModel


def _frame(tables: Tables | None, data: Any) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True)
    if isinstance(data, pa.Table):
        return data.to_pandas()  # type: ignore[no-any-return]
    if isinstance(data, str) and data.strip() and tables is not None:
        text = data.strip()
        is_sql = text.split(None, 1)[0].lower() in ("select", "with", "from")
        return (tables.sql(text) if is_sql else tables.read(text)).to_pandas()  # type: ignore[no-any-return]
    raise InvalidArgument("evaluate needs data as a pandas DataFrame, an Arrow table, a table name or SQL")


def _with_features(features: FeatureStore | None, info: ModelVersionInfo, frame: pd.DataFrame) -> pd.DataFrame:
    if not info.feature_spec or features is None:
        return frame
    from mlharbor.features.spec import FeatureSpec

    spec = FeatureSpec.from_json(json.dumps(info.feature_spec))
    if all(c in frame.columns for c in spec.feature_columns):
        return frame
    import pyarrow as pa

    scored = features.score_frame(spec, pa.Table.from_pandas(frame, preserve_index=False))
    return scored.to_pandas()  # type: ignore[no-any-return]


def _predict(model: PackagedModel, frame: pd.DataFrame, label: str) -> Any:
    inputs = list(getattr(model.model, "feature_names_in_", [c for c in frame.columns if c != label]))
    missing = [c for c in inputs if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"the evaluation data lacks model inputs {missing}")
    return model.predict(frame[inputs])


def _resolve(models: ModelStore, model_uri: str, version: int | str | None) -> ModelVersionInfo:
    if model_uri.startswith("models:/"):
        name, ref = parse_model_uri(model_uri)
    else:
        name, ref = model_uri, str(version if version is not None else "latest")
    if ref == "latest":
        return models.versions(name)[-1]
    return models.get_version(name, ref)


def evaluate_model(models: ModelStore, features: FeatureStore | None, tables: Tables | None, model_uri: str,
                   data: Any, label: str,
                   problem_type: str, *, version: int | str | None = None,
                   slices: Mapping[str, str] | Sequence[str] | None = None,
                   thresholds: Mapping[str, Threshold] | None = None, baseline: str | None = "champion",
                   custom_metrics: Mapping[str, Callable[[Any, Any], float]] | None = None,
                   sensitive_columns: Sequence[str] | None = None, min_slice_rows: int = 20,
                   store: bool = True) -> EvaluationResult:
    """Evaluate a registered version (``models:/name/3``, ``models:/name@challenger`` or a name with
    ``version``, default the latest) on ``data`` against ``baseline`` (an alias, stage or version
    number of the same model; None for no baseline)."""
    from mlharbor.evaluation import evaluate_predictions

    info = _resolve(models, model_uri, version)
    frame = _frame(tables, data)
    if label not in frame.columns:
        raise InvalidArgument(f"the evaluation data has no label column {label!r}")
    scored = _with_features(features, info, frame)
    y_true = scored[label].to_numpy()
    common = {"problem_type": problem_type, "data": scored, "slices": slices, "custom_metrics": custom_metrics,
              "sensitive_columns": sensitive_columns, "min_slice_rows": min_slice_rows}
    base_result, base_version = None, None
    if baseline is not None:
        try:
            base = models.get_version(info.name, baseline)
        except NotFound:
            base = None
        if base is not None and base.version != info.version:
            base_version = base.version
            base_scored = _with_features(features, base, frame)
            base_pred = _predict(models.load_model(info.name, base.version), base_scored, label)
            base_result = evaluate_predictions(y_true, base_pred, **common)  # type: ignore[arg-type]
    prediction = _predict(models.load_model(info.name, info.version), scored, label)
    result = evaluate_predictions(y_true, prediction, thresholds=thresholds, baseline=base_result,
                                  **common)  # type: ignore[arg-type]
    if store:
        _store(models, info, result, base_version)
    return result


def _store(models: ModelStore, info: ModelVersionInfo, result: EvaluationResult, base_version: int | None) -> None:
    document = {**result.to_dict(), "baseline_version": base_version}
    tracking = models._tracking
    with tracking.start_run(f"{info.name} evaluation", run_name=f"evaluate v{info.version}",
                            tags={"mlharbor.model": info.name, "mlharbor.model_version": str(info.version),
                                  "mlharbor.blessed": str(result.blessed).lower()}) as run:
        run.log_metrics({k: v for k, v in result.metrics.items()})
        for name, piece in result.slices.items():
            safe = re.sub(r"[^A-Za-z0-9_\-. :/]", "_", name)  # MLflow's allowed metric-name characters
            run.log_metrics({f"{k}.{safe}"[:250]: v for k, v in piece.metrics.items()})
        run.log_text(json.dumps(document, indent=1, sort_keys=True, default=str), "evaluation.json")
    document["run_id"] = run.run_id
    models.update_version(info.name, info.version, evaluation=document)
    resource = events.version_resource(info.name, info.version)
    with models._ctx.store.transaction() as tx:
        record(tx, models._actor, "model.evaluate", resource, {"blessed": result.blessed, "run_id": run.run_id})
        events.emit(tx, models._actor, events.EVALUATION_COMPLETED, resource,
                    {"name": info.name, "version": info.version, "blessed": result.blessed,
                     "baseline_version": base_version, "reasons": list(result.reasons)[:20]})
