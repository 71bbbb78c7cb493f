"""The MLflow ``loader_module`` of models packaged by mlharbor (``mlflow.pyfunc`` calls
``_load_pyfunc``), so ``mlflow.pyfunc.load_model("models:/name@champion")`` works with plain MLflow.

Before anything is deserialised, the payload's files are checked against the SHA-256 manifest
written beside them, and a pickle-based payload is refused unless allowed (the workspace policy,
or ``MLHARBOR_ALLOW_PICKLE_MODELS=1`` for plain MLflow users).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlharbor.errors import InvalidArgument, PermissionDenied, UserCodeError
from mlharbor.tracking.hashing import verify_tree
from mlharbor.tracking.serializers import serializer_named

MODEL_META = "mlharbor_model.json"
PAYLOAD_MANIFEST = "payload_manifest.json"
FEATURE_SPEC = "feature_spec.json"


class PackagedModel:
    """A loaded mlharbor model: ``predict(frame)`` as MLflow's pyfunc expects; ``model`` is the
    framework object; ``feature_spec`` the spec (JSON text) it was trained with, if any."""

    def __init__(self, model: Any, method: str, feature_spec: str | None) -> None:
        self.model = model
        self.method = method
        self.feature_spec = feature_spec

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        try:
            return getattr(self.model, self.method)(model_input)
        except Exception as exc:
            raise UserCodeError.from_exception(exc, f"{type(self.model).__name__}.{self.method}") from exc


def pickle_allowed_by_env() -> bool:
    return os.environ.get("MLHARBOR_ALLOW_PICKLE_MODELS", "") in ("1", "true", "yes")


def load_payload(data_dir: Path, allow_pickle: bool) -> PackagedModel:
    """Verify and load the payload folder written by :func:`mlharbor.tracking.packaging.package_model`."""
    try:
        meta = json.loads((data_dir / MODEL_META).read_text())
        manifest = json.loads((data_dir / PAYLOAD_MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"{data_dir} is not an mlharbor model payload: {exc}") from None
    problems = verify_tree(data_dir, manifest, exclude=frozenset({PAYLOAD_MANIFEST}))
    if problems:
        raise PermissionDenied(f"model artifacts do not match their recorded SHA-256: {'; '.join(problems)}")
    serializer = serializer_named(str(meta["serialization"]), allow_pickle)
    spec_file = data_dir / FEATURE_SPEC
    spec = spec_file.read_text() if spec_file.is_file() else None
    return PackagedModel(serializer.load(data_dir, meta["meta"]), str(meta.get("method", "predict")), spec)


def _load_pyfunc(data_path: str) -> PackagedModel:
    """Entry point for ``mlflow.pyfunc``."""
    return load_payload(Path(data_path), pickle_allowed_by_env())
