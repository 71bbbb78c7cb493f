"""``Workspace.connect(...).tracking``: runs through the server's MLflow API, with the caller's token.

The same :class:`mlharbor.tracking.runs.ActiveRun` as locally: batched params and metrics, git and
package tags, training-set inputs. The server checks permissions on each MLflow call and records the
lineage of ``delta`` dataset inputs itself (:mod:`mlharbor.api.mlflow_gate`).
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlharbor.errors import InvalidArgument
from mlharbor.tracking.environment import run_environment_tags
from mlharbor.tracking.runs import ActiveRun

if TYPE_CHECKING:
    from mlharbor.client.http import RestClient
    from mlharbor.tracking.mlflow_adapter import MlflowAdapter
    from mlharbor.tracking.records import MetricPoint, RunRecord


class RestTracking:
    """Tracking against a ``mlharbor server``."""

    def __init__(self, client: RestClient) -> None:
        from mlharbor.tracking.mlflow_adapter import MlflowAdapter

        self._c = client
        self.adapter: MlflowAdapter = MlflowAdapter(client.url, "", token=client.token)

    @property
    def autologging(self) -> bool:
        return False

    def autolog(self, flavors: tuple[str, ...] = ("sklearn", "xgboost", "lightgbm")) -> builtins.list[str]:
        raise InvalidArgument("autologging through a server is not supported yet: log params and metrics on the "
                              "run, or use Workspace.open")

    def record_inputs(self, run_id: str, versions: dict[str, int]) -> None:
        """Nothing to do here: the server records lineage from the run's delta dataset inputs."""

    def start_run(self, experiment: str, run_name: str | None = None, tags: dict[str, Any] | None = None) -> ActiveRun:
        if not isinstance(experiment, str) or not experiment.strip():
            raise InvalidArgument("an experiment needs a name")
        principal = str(self._c.json("GET", "/api/v1/whoami")["principal"])
        all_tags = {**run_environment_tags(Path.cwd()), "mlharbor.principal": principal, "mlflow.user": principal,
                    **{k: str(v) for k, v in (tags or {}).items()}}
        return ActiveRun(self, self.adapter.create_run(experiment, run_name, all_tags))

    def get_run(self, run_id: str) -> RunRecord:
        return self.adapter.get_run(run_id)

    def search_runs(self, experiment: str, filter_string: str = "", max_results: int = 100) -> builtins.list[RunRecord]:
        return self.adapter.search_runs(experiment, filter_string, max_results)

    def metric_history(self, run_id: str, key: str) -> builtins.list[MetricPoint]:
        return self.adapter.metric_history(run_id, key)

    def experiments(self) -> builtins.list[str]:
        return self.adapter.experiments()
