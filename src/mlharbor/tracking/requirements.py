"""Pip requirements of a logged model, computed in-process (no ``pip`` subprocess).

MLflow's default infers requirements by loading the model in a subprocess and watching imports,
which costs seconds per model. mlharbor knows what a model needs from the model object itself:
the distributions providing the modules its class hierarchy comes from, the serialiser that
wrote it, and the loader (mlharbor, mlflow).
"""

from __future__ import annotations

import functools
import inspect
from importlib import metadata
from typing import Any

# Always needed to load an mlharbor-packaged model with MLflow.
LOADER_DISTRIBUTIONS = ("mlharbor", "mlflow", "numpy", "pandas")


# Import names that differ from their distribution's name (looked up without scanning every
# installed distribution, which ``packages_distributions()`` does and which costs seconds).
KNOWN_DISTRIBUTIONS = {"sklearn": "scikit-learn", "skimage": "scikit-image", "cv2": "opencv-python",
                       "yaml": "PyYAML", "PIL": "Pillow", "google": "protobuf"}


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def _distributions_of(module: str) -> list[str]:
    direct = KNOWN_DISTRIBUTIONS.get(module, module)
    if distribution_version(direct) is not None:
        return [direct]
    return list(_packages_distributions().get(module, []))  # the slow, complete index


def distribution_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _model_modules(model: Any) -> list[str]:
    """Top-level modules of the model's class hierarchy and of the estimators it nests (pipelines)."""
    modules = {c.__module__.split(".")[0] for c in inspect.getmro(type(model)) if c.__module__ != "builtins"}
    for step in getattr(model, "steps", None) or []:  # sklearn Pipeline: (name, estimator)
        if isinstance(step, tuple) and len(step) == 2:
            modules.update(_model_modules(step[1]))
    for attr in ("estimator", "base_estimator", "final_estimator"):
        inner = getattr(model, attr, None)
        if inner is not None and not isinstance(inner, str | int | float):
            modules.update(_model_modules(inner))
    return sorted(modules)


def requirements_for(model: Any, extra_distributions: tuple[str, ...] = ()) -> list[str]:
    """``name==version`` pins for everything needed to load and run ``model``, sorted."""
    dists = set(LOADER_DISTRIBUTIONS) | set(extra_distributions)
    for module in _model_modules(model):
        dists.update(_distributions_of(module))
    pins = []
    for dist in sorted(dists, key=str.lower):
        version = distribution_version(dist)
        if version is not None and dist.lower() != "mlflow-skinny":
            pins.append(f"{dist}=={version}")
    return pins
