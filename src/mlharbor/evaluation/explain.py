"""Global feature importance from SHAP values (optional extra ``mlharbor[explain]``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlharbor.errors import InvalidArgument, MissingDependency, UserCodeError


def explain(
    model_predict_fn: Callable[[pd.DataFrame], Any], frame: pd.DataFrame, max_rows: int = 200
) -> dict[str, float]:
    """Mean absolute SHAP value per feature column of ``frame``, largest first.

    The first ``max_rows`` rows serve as both the background and the explained rows (SHAP's
    model-agnostic explainer, so ``model_predict_fn`` is any ``frame -> predictions`` callable).
    For multi-output models the mean is also taken over the outputs. Raises MissingDependency if
    ``shap`` is not installed, InvalidArgument on an empty frame or a bad ``max_rows``, and
    UserCodeError if ``model_predict_fn`` raises.
    """
    try:
        import shap  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise MissingDependency("explanations need shap: pip install 'mlharbor[explain]'") from exc
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise InvalidArgument(f"max_rows must be a positive integer, not {max_rows!r}")
    if not isinstance(frame, pd.DataFrame) or frame.empty or frame.shape[1] == 0:
        raise InvalidArgument("explain needs a non-empty DataFrame of feature columns")
    sample = frame.head(max_rows).reset_index(drop=True)

    def predict(rows: Any) -> Any:
        # SHAP's maskers hand the model numpy arrays; user predict functions expect the frame's columns.
        batch = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(np.asarray(rows), columns=sample.columns)
        try:
            return model_predict_fn(batch)
        except Exception as exc:
            raise UserCodeError.from_exception(exc, "model_predict_fn (while explaining)") from exc

    explainer = shap.Explainer(predict, sample)
    values = np.asarray(explainer(sample).values, dtype=float)
    if values.ndim < 2 or values.shape[0] != len(sample) or values.shape[1] != sample.shape[1]:
        raise InvalidArgument(f"unexpected SHAP values of shape {values.shape} for a frame of shape {sample.shape}")
    magnitude = np.abs(values).reshape(values.shape[0], values.shape[1], -1).mean(axis=(0, 2))
    importance = {str(column): float(m) for column, m in zip(sample.columns, magnitude, strict=True)}
    return dict(sorted(importance.items(), key=lambda item: item[1], reverse=True))
