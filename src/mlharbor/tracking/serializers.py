"""How model objects are written to and read from files, safest format first.

* XGBoost (``XGBClassifier``/``XGBRegressor``/``XGBRanker``, ``Booster``): XGBoost's own JSON model
  format; loading instantiates a class from the ``xgboost`` package only.
* LightGBM (``LGBMClassifier``/``LGBMRegressor``, ``Booster``): LightGBM's text model format, loaded as a
  ``Booster`` behind a small adapter that answers ``predict``/``predict_proba`` like the wrapper did.
* scikit-learn (estimators, pipelines): **skops** — loading never runs arbitrary code; the types a
  file may construct beyond skops' defaults are recorded when the model is logged (only types from
  scikit-learn, NumPy and SciPy are accepted there), and loading trusts exactly those.
* anything else: **pickle**, only when the workspace policy ``allow_pickle_models`` is on, for
  logging and for loading alike (unpickling an untrusted file runs its code).

A serializer is picked by the modules the model's class comes from; nothing is imported for a
framework the model does not use.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from mlharbor.errors import InvalidArgument, MissingDependency, PermissionDenied

SKOPS_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


class Serializer(ABC):
    """Writes one model object to ``data_dir`` and reads it back."""

    name: ClassVar[str]
    safe: ClassVar[bool]  # False: loading may run code from the file
    distributions: ClassVar[tuple[str, ...]] = ()  # extra pip requirements of the format

    @classmethod
    @abstractmethod
    def handles(cls, modules: list[str]) -> bool:
        """Whether this serializer fits a model whose class hierarchy comes from ``modules``."""

    @abstractmethod
    def dump(self, model: Any, data_dir: Path) -> dict[str, Any]:
        """Write the model under ``data_dir``; returns what ``load`` needs (JSON-serialisable)."""

    @abstractmethod
    def load(self, data_dir: Path, meta: dict[str, Any]) -> Any:
        """The model object written by ``dump``."""


class SkopsSerializer(Serializer):
    name = "skops"
    safe = True
    distributions = ("skops", "scikit-learn")
    FILE = "model.skops"

    @classmethod
    def handles(cls, modules: list[str]) -> bool:
        return "sklearn" in modules

    def dump(self, model: Any, data_dir: Path) -> dict[str, Any]:
        sio = _skops()
        path = data_dir / self.FILE
        sio.dump(model, path)
        untrusted = sorted(sio.get_untrusted_types(file=path))
        foreign = [t for t in untrusted if not t.startswith(SKOPS_TRUSTED_PREFIXES)]
        if foreign:
            raise InvalidArgument(
                f"the model contains types skops cannot load safely: {', '.join(foreign)}; use scikit-learn "
                "components only, or allow pickle-based models in the workspace policy (allow_pickle_models)")
        return {"file": self.FILE, "trusted_types": untrusted}

    def load(self, data_dir: Path, meta: dict[str, Any]) -> Any:
        sio = _skops()
        path = data_dir / str(meta["file"])
        trusted = list(meta.get("trusted_types", []))
        unexpected = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted))
        if unexpected or any(not t.startswith(SKOPS_TRUSTED_PREFIXES) for t in trusted):
            raise PermissionDenied(f"the model file would construct types it was not logged with: {unexpected}")
        return sio.load(path, trusted=trusted)


class XGBoostSerializer(Serializer):
    name = "xgboost"
    safe = True
    distributions = ("xgboost",)
    FILE = "model.json"

    @classmethod
    def handles(cls, modules: list[str]) -> bool:
        return "xgboost" in modules

    def dump(self, model: Any, data_dir: Path) -> dict[str, Any]:
        cls_ = type(model)
        if not cls_.__module__.startswith("xgboost."):
            raise InvalidArgument(f"{cls_.__qualname__} wraps XGBoost; log the XGBoost model itself")
        model.save_model(str(data_dir / self.FILE))
        return {"file": self.FILE, "class": f"{cls_.__module__}:{cls_.__qualname__}"}

    def load(self, data_dir: Path, meta: dict[str, Any]) -> Any:
        import importlib

        module_name, _, qualname = str(meta["class"]).partition(":")
        if not module_name.startswith("xgboost.") or "." in qualname:
            raise PermissionDenied(f"refusing to construct {meta['class']!r}: not an XGBoost model class")
        model = getattr(importlib.import_module(module_name), qualname)()
        model.load_model(str(data_dir / str(meta["file"])))
        if qualname == "Booster":
            return _XGBoosterAdapter(model)
        return model


class _XGBoosterAdapter:
    """A raw XGBoost Booster answering ``predict(frame)`` (it wants a DMatrix)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, frame: Any) -> Any:
        import xgboost

        return self.booster.predict(xgboost.DMatrix(frame))


class LightGBMSerializer(Serializer):
    name = "lightgbm"
    safe = True
    distributions = ("lightgbm",)
    FILE = "model.txt"

    @classmethod
    def handles(cls, modules: list[str]) -> bool:
        return "lightgbm" in modules

    def dump(self, model: Any, data_dir: Path) -> dict[str, Any]:
        booster = getattr(model, "booster_", model)
        booster.save_model(str(data_dir / self.FILE))
        classes = getattr(model, "classes_", None)
        kind = "classifier" if classes is not None else ("regressor" if booster is not model else "booster")
        return {"file": self.FILE, "kind": kind,
                "classes": None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]}

    def load(self, data_dir: Path, meta: dict[str, Any]) -> Any:
        import lightgbm

        booster = lightgbm.Booster(model_file=str(data_dir / str(meta["file"])))
        return _LightGBMAdapter(booster, str(meta.get("kind", "booster")), meta.get("classes"))


class _LightGBMAdapter:
    """A LightGBM Booster that answers like the scikit-learn wrapper it was saved from."""

    def __init__(self, booster: Any, kind: str, classes: list[Any] | None) -> None:
        self.booster, self.kind, self.classes_ = booster, kind, classes

    def predict_proba(self, frame: Any) -> Any:
        import numpy as np

        raw = np.asarray(self.booster.predict(frame))
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, frame: Any) -> Any:
        import numpy as np

        if self.kind != "classifier" or self.classes_ is None:
            return self.booster.predict(frame)
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(frame), axis=1)]


class PickleSerializer(Serializer):
    name = "pickle"
    safe = False
    FILE = "model.pkl"

    @classmethod
    def handles(cls, modules: list[str]) -> bool:
        return True

    def dump(self, model: Any, data_dir: Path) -> dict[str, Any]:
        with open(data_dir / self.FILE, "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return {"file": self.FILE}

    def load(self, data_dir: Path, meta: dict[str, Any]) -> Any:
        with open(data_dir / str(meta["file"]), "rb") as fh:
            return pickle.load(fh)  # only reached when the policy allows pickle models


# Native formats first: XGBoost's and LightGBM's scikit-learn wrappers also come from sklearn classes.
SERIALIZERS: tuple[type[Serializer], ...] = (XGBoostSerializer, LightGBMSerializer, SkopsSerializer, PickleSerializer)


def serializer_for(modules: list[str], allow_pickle: bool) -> Serializer:
    """The first safe serializer that fits, else pickle if allowed; InvalidArgument otherwise."""
    for cls in SERIALIZERS:
        if cls.handles(modules) and (cls.safe or allow_pickle):
            return cls()
    raise InvalidArgument(
        f"no safe format is known for a model from {', '.join(modules) or 'builtins'}: log a scikit-learn, "
        "XGBoost or LightGBM model, or allow pickle-based models in the workspace policy "
        "([policy] allow_pickle_models = true)")


def serializer_named(name: str, allow_pickle: bool) -> Serializer:
    """The serializer that wrote a model; PermissionDenied for pickle unless the policy allows it."""
    for cls in SERIALIZERS:
        if cls.name == name:
            if not cls.safe and not allow_pickle:
                raise PermissionDenied(
                    f"the model is serialised with {name}, which can run code when loaded; the workspace policy "
                    "refuses it (set [policy] allow_pickle_models = true, or MLHARBOR_ALLOW_PICKLE_MODELS=1, "
                    "only for artifacts you trust)")
            return cls()
    raise InvalidArgument(f"unknown model serialization {name!r}")


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:
        raise MissingDependency("scikit-learn models are stored with skops: pip install 'mlharbor[sklearn]'") from exc
    return sio
