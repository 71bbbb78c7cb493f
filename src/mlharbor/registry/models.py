"""``ws.models``: log models from runs and training sets, load them safely, and the registry workflow.

``log_model`` packages a model (:mod:`mlharbor.tracking.packaging`: safe format, explicit
requirements, signature, feature spec, model card, SHA-256 of every file), uploads it as the run's
``model`` artifact and registers it as the next version. ``load_model`` downloads a version,
verifies every file against the manifest recorded in the registry (not the one in the artifact
store, which whoever can write there could rewrite too), and only then deserialises it.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.core.entities import ModelStage
from mlharbor.core.paths import check_relative_path, join_uri
from mlharbor.errors import InvalidArgument
from mlharbor.registry import events
from mlharbor.registry.checks import CheckContext, run_checks
from mlharbor.registry.service import ModelRegistry, model_node
from mlharbor.registry.webhooks import WebhookService
from mlharbor.tracking.card import CARD_FIELDS, CARD_FILE, card_tag, render_card
from mlharbor.tracking.hashing import verify_tree
from mlharbor.tracking.loader import PackagedModel, load_payload, pickle_allowed_by_env
from mlharbor.tracking.packaging import PAYLOAD, PackagedFolder, package_model, read_packaged
from mlharbor.tracking.runs import training_set_versions

if TYPE_CHECKING:
    from mlharbor.catalog.service import CatalogContext
    from mlharbor.core.actors import Actor
    from mlharbor.core.entities import ModelVersionInfo, TransitionRequest
    from mlharbor.tracking.mlflow_adapter import MlflowAdapter
    from mlharbor.tracking.records import RunRecord
    from mlharbor.tracking.runs import ActiveRun, TrackingService

MODEL_ARTIFACT = "model"
EXAMPLE_ROWS = 5
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<ref>[A-Za-z0-9_-]+))$")


def parse_model_uri(uri: str) -> tuple[str, str]:
    """``models:/name@alias`` or ``models:/name/3`` (or ``/Production``) → (name, reference)."""
    match = _MODELS_URI.match(uri or "")
    if match is None:
        raise InvalidArgument(f"not a model URI: {uri!r}; use models:/catalog.schema.model@champion or "
                              "models:/catalog.schema.model/3")
    return match["name"], match["alias"] or match["ref"]


def model_reference(uri_or_name: str, version: int | str | None = None) -> tuple[str, str]:
    """(name, reference) of ``models:/name@alias`` / ``models:/name/3``, or of ``name`` with
    ``version`` (number, alias or stage; default champion)."""
    if uri_or_name.startswith("models:/"):
        return parse_model_uri(uri_or_name)
    return uri_or_name, str(version if version is not None else "champion")


def manifest_mismatch(folder: Path, info: ModelVersionInfo) -> str | None:
    """Why the downloaded files of ``info`` differ from the manifest recorded at registration, or None."""
    problems = verify_tree(folder, info.manifest)
    if not problems:
        return None
    return (f"artifacts of {info.name} v{info.version} do not match the SHA-256 recorded at registration: "
            f"{'; '.join(problems[:5])}")


def _example_from(training_set: Any) -> Any:
    spec = training_set.spec
    drop = {spec.label, *spec.exclude_columns} - {None}
    frame = training_set.load_df().slice(0, EXAMPLE_ROWS)
    return frame.select([c for c in frame.column_names if c not in drop])


def _str_tags(tags: dict[str, str] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


def package_logged_model(model: Any, folder: Path, name: str, *, record: RunRecord, training_set: Any = None,
                         input_example: Any = None, description: str = "", tags: dict[str, str] | None = None,
                         allow_pickle: bool = False, method: str = "predict") -> PackagedFolder:
    """Package ``model`` at ``folder`` as ``log_model`` does (locally or through a server): the
    training set's feature spec, an input example (the training set's first rows when not given) and
    a model card of run ``record``."""
    spec_json = None
    feature_columns: list[str] = []
    if training_set is not None:
        spec_json = training_set.spec.to_json()
        feature_columns = list(training_set.spec.feature_columns)
        if input_example is None:
            input_example = _example_from(training_set)
    card = _card_for(name, None, model, description, record, training_set_versions(training_set), feature_columns,
                     _str_tags(tags))
    return package_model(model, folder, input_example=input_example, feature_spec_json=spec_json,
                         allow_pickle=allow_pickle, method=method, extra_files={CARD_FILE: card})


class ModelStore(ModelRegistry):
    """The registry workflow (:class:`ModelRegistry`) plus logging and loading model artifacts."""

    def __init__(self, ctx: CatalogContext, actor: Actor, engine: MlflowAdapter, tracking: TrackingService) -> None:
        super().__init__(ctx, actor, engine)
        self._tracking = tracking
        self._settings = ctx.settings

    @property
    def webhooks(self) -> WebhookService:
        """Webhooks receiving registry events (create, list, delete, delivery log)."""
        return WebhookService(self._ctx, self._actor)

    @property
    def allow_pickle(self) -> bool:
        return self._settings.policy.allow_pickle_models or pickle_allowed_by_env()

    def log_model(self, model: Any, name: str, *, training_set: Any = None, input_example: Any = None,
                  run: ActiveRun | None = None, experiment: str | None = None, description: str = "",
                  tags: dict[str, str] | None = None, method: str = "predict") -> ModelVersionInfo:
        """Package ``model`` and register it as the next version of ``name`` (``catalog.schema.model``).

        With no ``run``, a run is started in ``experiment`` (default: the model name) and ended.
        ``training_set`` (from ``ws.features.create_training_set``) gives the feature spec packaged
        with the model, the lineage and, when ``input_example`` is not given, the input example
        (its first rows without the label). Returns the new version (stage None).
        """
        self._authorize(name, Permission.WRITE, "model.register")
        if run is None:
            with self._tracking.start_run(experiment or name, run_name=f"log {name}") as own:
                return self.log_model(model, name, training_set=training_set, input_example=input_example,
                                      run=own, description=description, tags=tags, method=method)
        if training_set is not None:
            run.log_training_set(training_set)
        run.flush()
        record = self._tracking.adapter.get_run(run.run_id)
        user_tags = _str_tags(tags)
        with tempfile.TemporaryDirectory(prefix="mlharbor-log-") as tmp:
            packaged = package_logged_model(
                model, Path(tmp) / MODEL_ARTIFACT, name, record=record, training_set=training_set,
                input_example=input_example, description=description, tags=user_tags,
                allow_pickle=self.allow_pickle, method=method)
            source = self._tracking.adapter.log_artifacts(run.run_id, packaged.path, MODEL_ARTIFACT)
        return self._register_packaged(name, source, run.run_id, packaged, description, user_tags,
                                       training_set_versions(training_set))

    def register_logged_model(self, name: str, run_id: str, artifact_path: str = MODEL_ARTIFACT, *,
                              description: str = "", tags: dict[str, str] | None = None,
                              trained_on: dict[str, int] | None = None, flavor: str | None = None,
                              feature_spec: dict[str, Any] | None = None) -> ModelVersionInfo:
        """Register the model folder that run ``run_id`` logged at ``artifact_path`` (packaged by
        mlharbor, e.g. by a client through a server) as the next version of ``name``.

        The folder is downloaded here and its manifest computed here: what loading will verify is
        never taken from the caller. Flavor, serialization, requirements and feature spec are read
        from the packaged payload; ``flavor`` and ``feature_spec``, when given, must match it.
        ``trained_on`` (table → version) becomes lineage edges into the version.
        """
        self._authorize(name, Permission.WRITE, "model.register")
        check_relative_path(artifact_path, "artifact path")
        source = join_uri(self._tracking.get_run(run_id).artifact_uri, artifact_path)
        with tempfile.TemporaryDirectory(prefix="mlharbor-register-") as tmp:
            packaged = read_packaged(self._tracking.adapter.download(source, Path(tmp) / MODEL_ARTIFACT))
        if flavor is not None and flavor != packaged.flavor:
            raise InvalidArgument(f"flavor {flavor!r} does not match the packaged model's ({packaged.flavor!r})")
        packaged_spec = None if packaged.feature_spec is None else json.loads(packaged.feature_spec)
        if feature_spec is not None and feature_spec != packaged_spec:
            raise InvalidArgument("feature_spec does not match the one packaged with the model")
        return self._register_packaged(name, source, run_id, packaged, description, _str_tags(tags),
                                       dict(trained_on or {}))

    def _register_packaged(self, name: str, source: str, run_id: str, packaged: PackagedFolder, description: str,
                           user_tags: dict[str, str], trained_on: dict[str, int]) -> ModelVersionInfo:
        version_tags = {**user_tags, "mlharbor.serialization": packaged.serialization,
                        "mlharbor.model_class": packaged.model_class,
                        "mlharbor.requirements": "\n".join(packaged.requirements)}
        return self.register_version(
            name, source, run_id, packaged.manifest, packaged.flavor,
            feature_spec=None if packaged.feature_spec is None else json.loads(packaged.feature_spec),
            description=description, tags=version_tags, trained_on=trained_on)

    def load_model(self, uri_or_name: str, version: int | str | None = None) -> PackagedModel:
        """Load ``models:/name@alias`` / ``models:/name/3``, or ``name`` with ``version`` (number,
        alias or stage; default champion), after verifying every file's SHA-256."""
        info = self.get_version(*model_reference(uri_or_name, version))
        with tempfile.TemporaryDirectory(prefix="mlharbor-load-") as tmp:
            local = self._tracking.adapter.download(info.source, Path(tmp) / MODEL_ARTIFACT)
            mismatch = manifest_mismatch(local, info)
            if mismatch:
                raise self._deny("model.load", f"model:{info.name}@{info.version}", mismatch)
            return load_payload(local / "data" / PAYLOAD, self.allow_pickle)

    def request_transition(self, name: str, version: int, stage: ModelStage | str,
                           comment: str = "") -> TransitionRequest:
        """Ask for ``version`` to move to ``stage`` and run the model's compliance checks on it; the
        request then waits for an approver (failing checks block the approval)."""
        request = super().request_transition(name, version, stage, comment)
        if request.to_stage in (ModelStage.STAGING, ModelStage.PRODUCTION):
            self.run_checks(request.name, request.version, request.id)
        return request

    def run_checks(self, name: str, version: int | str, request_id: str | None = None) -> dict[str, Any]:
        """Run the model's configured compliance checks (default set when none) on a version and store
        the report on it (``version.checks``, and ``mlharbor.check.<name>`` tags here and in MLflow)."""
        info = self.get_version(name, version)
        self._authorize(info.name, Permission.REQUEST, "model.checks")
        model = self.get_model(info.name)
        with tempfile.TemporaryDirectory(prefix="mlharbor-checks-") as tmp:
            local = self._tracking.adapter.download(info.source, Path(tmp) / MODEL_ARTIFACT)
            ctx = CheckContext(model, info, local, self.allow_pickle)
            report = run_checks(ctx, model.checks or None)
        report["request_id"] = request_id
        tags = {**info.tags, **{f"mlharbor.check.{r['name']}": "passed" if r["passed"] else "failed"
                                for r in report["results"]}}
        resource = events.version_resource(info.name, info.version)
        with self._ctx.store.transaction() as tx:
            tx.registry.update_version(info.name, info.version, checks=report, tags=tags)
            record(tx, self._actor, "model.checks", resource, {"passed": report["passed"], "request": request_id})
            events.emit(tx, self._actor, events.CHECKS_COMPLETED, resource,
                        {"name": info.name, "version": info.version, "passed": report["passed"],
                         "failed": [r["name"] for r in report["results"] if not r["passed"]],
                         "request_id": request_id})
        for r in report["results"]:
            self._tracking.adapter.set_version_tag(info.name, info.version, f"mlharbor.check.{r['name']}",
                                                   "passed" if r["passed"] else "failed")
        return report

    def card(self, name: str, version: int | str) -> str:
        """The model card of a version as markdown, regenerated with what is recorded now
        (filled fields, evaluation, checks)."""
        info = self.get_version(name, version)
        record = self._tracking.adapter.get_run(info.run_id) if info.run_id else None
        trained_on = {e.source.name: int(e.source.version) for e in self._ctx.lineage.upstream(
            model_node(info.name, info.version)) if e.source.kind == "table" and e.source.version is not None}
        columns: list[str] = []
        if info.feature_spec:
            columns = [o for lk in info.feature_spec.get("lookups", []) for o in lk["outputs"]]
            columns += [f["output_name"] for f in info.feature_spec.get("functions", [])]
        return render_card(
            name=info.name, version=info.version, flavor=info.flavor,
            model_class=info.tags.get("mlharbor.model_class", ""), description=info.description,
            stage=info.stage.value, created_by=info.created_by,
            run=None if record is None else {"run_id": record.run_id, "metrics": record.metrics},
            trained_on=trained_on, feature_columns=columns,
            requirements=info.tags.get("mlharbor.requirements", "").splitlines(), tags=info.tags,
            evaluation=info.evaluation, checks=info.checks)

    def set_card_fields(self, name: str, version: int, **fields: str) -> ModelVersionInfo:
        """Fill the card's human-written fields (``intended_use``, ``limitations``,
        ``ethical_considerations``, ``out_of_scope_use``)."""
        unknown = set(fields) - set(CARD_FIELDS)
        if unknown:
            raise InvalidArgument(f"unknown card fields {sorted(unknown)}; use {', '.join(CARD_FIELDS)}")
        info = self.get_version(name, version)
        tags = {**info.tags, **{card_tag(k): str(v) for k, v in fields.items()}}
        return self.update_version(name, info.version, tags=tags)


def _card_for(name: str, version: int | None, model: Any, description: str, record: Any,
              trained_on: dict[str, int], feature_columns: list[str], tags: dict[str, str]) -> str:
    from mlharbor.tracking.requirements import requirements_for

    return render_card(
        name=name, version=version, flavor=type(model).__module__.split(".")[0],
        model_class=f"{type(model).__module__}.{type(model).__qualname__}", description=description,
        stage="None", created_by=str(record.tags.get("mlharbor.principal", "")),
        run={"run_id": record.run_id, "metrics": record.metrics}, trained_on=trained_on,
        feature_columns=feature_columns, requirements=requirements_for(model), tags=tags)
