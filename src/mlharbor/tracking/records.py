"""Plain records of the tracking subsystem (no MLflow types cross its interface)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    """An MLflow run as mlharbor shows it: latest metric values, params, tags and inputs."""

    run_id: str
    experiment: str
    name: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    artifact_uri: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)  # {"name", "source", "digest", "context"}


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    timestamp_ms: int
    step: int
