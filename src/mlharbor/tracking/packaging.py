"""Packaging a model object as an MLflow pyfunc model folder, fast and safe.

The folder holds MLflow's own files (MLmodel with signature, input example, explicit pip
requirements) and a payload: the model in the safest format that fits
(:mod:`mlharbor.tracking.serializers`), ``mlharbor_model.json`` (how to load it), the feature spec
of its training set, and a SHA-256 manifest of the payload. The loader (:mod:`.loader`) checks the
manifest before deserialising anything. Requirements are computed in-process
(:mod:`.requirements`), which is what makes logging take well under a second.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlharbor.errors import InvalidArgument, UserCodeError
from mlharbor.tracking import mlflow_adapter
from mlharbor.tracking.hashing import hash_tree
from mlharbor.tracking.loader import FEATURE_SPEC, MODEL_META, PAYLOAD_MANIFEST
from mlharbor.tracking.requirements import _model_modules, requirements_for
from mlharbor.tracking.serializers import serializer_for

LOADER_MODULE = "mlharbor.tracking.loader"
PAYLOAD = "payload"


@dataclass(frozen=True)
class PackagedFolder:
    """A written model folder and what was recorded about it."""

    path: Path
    flavor: str  # e.g. "sklearn"
    serialization: str  # "skops" or "pickle"
    requirements: list[str]
    manifest: dict[str, str]  # every file of the folder → SHA-256
    model_class: str
    feature_spec: str | None = None  # the training set's feature spec (JSON), packaged in the payload


def _model_flavor(modules: list[str]) -> str:
    for known in ("xgboost", "lightgbm", "sklearn"):  # boosting wrappers also inherit sklearn classes
        if known in modules:
            return known
    return modules[0] if modules else "python"


def predict_method(model: Any, method: str) -> str:
    if not callable(getattr(model, method, None)):
        raise InvalidArgument(f"{type(model).__name__} has no {method}() method to serve")
    return method


def package_model(model: Any, dest: Path, *, input_example: Any = None, feature_spec_json: str | None = None,
                  allow_pickle: bool = False, method: str = "predict", extra_files: dict[str, str] | None = None,
                  metadata: dict[str, Any] | None = None) -> PackagedFolder:
    """Write ``model`` as a pyfunc folder at ``dest`` (which must not exist).

    ``input_example`` (a DataFrame or Arrow table of a few rows) gives the signature: the model is
    run on it once, and a failure there is the user's :class:`UserCodeError`. ``extra_files`` are
    written at the folder's root (the model card) and covered by the manifest.
    """
    predict_method(model, method)
    if dest.exists():
        raise InvalidArgument(f"{dest} exists already")
    modules = _model_modules(model)
    serializer = serializer_for(modules, allow_pickle)
    example = _as_pandas(input_example)
    output = None
    if example is not None:
        try:
            output = getattr(model, method)(example)
        except Exception as exc:
            raise UserCodeError.from_exception(exc, f"{type(model).__name__}.{method} on the input example") from exc
    with tempfile.TemporaryDirectory(prefix="mlharbor-model-") as tmp:
        payload = Path(tmp) / PAYLOAD
        payload.mkdir()
        meta = serializer.dump(model, payload)
        model_class = f"{type(model).__module__}.{type(model).__qualname__}"
        requirements = requirements_for(model, serializer.distributions)
        flavor = _model_flavor(modules)
        (payload / MODEL_META).write_text(json.dumps(
            {"serialization": serializer.name, "meta": meta, "method": method, "class": model_class,
             "flavor": flavor, "requirements": requirements}, indent=1))
        if feature_spec_json is not None:
            (payload / FEATURE_SPEC).write_text(feature_spec_json)
        (payload / PAYLOAD_MANIFEST).write_text(json.dumps(hash_tree(payload), indent=1, sort_keys=True))
        mlflow_adapter.save_pyfunc(dest, LOADER_MODULE, payload, requirements, example, output,
                                   metadata={"mlharbor_serialization": serializer.name, **(metadata or {})})
    for name, text in (extra_files or {}).items():
        (dest / name).write_text(text)
    return PackagedFolder(dest, flavor, serializer.name, requirements, hash_tree(dest), model_class,
                          feature_spec_json)


def read_packaged(folder: Path) -> PackagedFolder:
    """What :func:`package_model` recorded about the model folder at ``folder`` (e.g. one downloaded
    from a run's artifacts), with the manifest computed from the files found there.

    InvalidArgument when the folder is not a model packaged by mlharbor.
    """
    meta_file = folder / "data" / PAYLOAD / MODEL_META
    try:
        meta = json.loads(meta_file.read_text())
        manifest = hash_tree(folder)
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"the artifact is not a model packaged by mlharbor (data/{PAYLOAD}/{MODEL_META}): "
                              f"{exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("serialization"), str):
        raise InvalidArgument(f"data/{PAYLOAD}/{MODEL_META} does not say how the model is serialised")
    model_class = str(meta.get("class", ""))
    requirements = meta.get("requirements")
    if not isinstance(requirements, list):  # packaged before the payload listed them
        req_file = folder / "requirements.txt"
        requirements = req_file.read_text().splitlines() if req_file.is_file() else []
    flavor = str(meta.get("flavor") or _model_flavor([model_class.partition(".")[0]] if model_class else []))
    spec_file = folder / "data" / PAYLOAD / FEATURE_SPEC
    spec = spec_file.read_text() if spec_file.is_file() else None
    return PackagedFolder(folder, flavor, meta["serialization"], [str(r) for r in requirements], manifest,
                          model_class, spec)


def _as_pandas(example: Any) -> Any:
    if example is None:
        return None
    import pyarrow as pa

    if isinstance(example, pa.Table | pa.RecordBatch):
        return example.to_pandas()
    return example
