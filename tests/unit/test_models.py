"""ws.models: logging (safe format, requirements, manifest, card), verified loading, and the registry
workflow (requests, approvals, one Production version, aliases, rollback, history, events)."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlharbor.core.entities import ModelStage, RequestStatus
from mlharbor.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from mlharbor.registry import events
from mlharbor.workspace import Workspace

MODEL = "dev.ml.churn"


class Doubler:
    """Not a scikit-learn model: only pickle can store it."""

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        return frame["a"] * 2


def frame(n: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.random((n, 3)), columns=["a", "b", "c"])
    return x, (x["a"] > 0.5).astype(int)


def fitted(seed: int = 0) -> LogisticRegression:
    x, y = frame(seed=seed)
    return LogisticRegression().fit(x, y)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    with Workspace.open(tmp_path) as ws:
        for name, role in (("dana", "data_scientist"), ("mel", "ml_engineer"), ("vic", "viewer")):
            ws.access.create_principal(name)
            ws.access.grant(name, role)
    return tmp_path


@pytest.fixture
def ws(home: Path) -> Iterator[Workspace]:
    with Workspace.open(home) as w:
        yield w


def as_user(home: Path, name: str) -> Workspace:
    return Workspace.open(home, principal=name)


def test_log_model_packages_safely(ws: Workspace) -> None:
    x, _ = frame()
    mv = ws.models.log_model(fitted(), MODEL, input_example=x.head(3), description="churn v1")
    assert (mv.version, mv.stage, mv.flavor) == (1, ModelStage.NONE, "sklearn")
    assert mv.tags["mlharbor.serialization"] == "skops"
    pins = mv.tags["mlharbor.requirements"].splitlines()
    assert any(p.startswith("scikit-learn==") for p in pins) and any(p.startswith("mlharbor==") for p in pins)
    assert any(p.startswith("skops==") for p in pins)
    assert {"MLmodel", "model_card.md", "data/payload/model.skops", "input_example.json"} <= set(mv.manifest)
    assert all(len(sha) == 64 for sha in mv.manifest.values())
    mlmodel = (Path(mv.source) / "MLmodel").read_text()
    assert "signature" in mlmodel and "mlharbor.tracking.loader" in mlmodel
    assert not list(Path(mv.source).rglob("*.pkl"))
    loaded = ws.models.load_model(MODEL, 1)
    assert list(loaded.predict(x.head(5))) == list(fitted().predict(x.head(5)))
    card = ws.models.card(MODEL, 1)
    assert "# Model card: dev.ml.churn v1" in card and "_to be filled_" in card
    ws.models.set_card_fields(MODEL, 1, intended_use="Rank churn risk.")
    assert "Rank churn risk." in ws.models.card(MODEL, 1)
    with pytest.raises(InvalidArgument):
        ws.models.set_card_fields(MODEL, 1, colour="red")


def test_tampered_artifacts_are_refused(ws: Workspace) -> None:
    mv = ws.models.log_model(fitted(), MODEL, input_example=frame()[0].head(2))
    path = Path(mv.source) / "data" / "payload" / "model.skops"
    shutil.copyfile(path, path.with_suffix(".bak"))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(PermissionDenied, match="SHA-256"):
        ws.models.load_model(MODEL, 1)
    path.with_suffix(".bak").replace(path)
    (Path(mv.source) / "extra.py").write_text("import os\n")
    with pytest.raises(PermissionDenied, match="not in the manifest"):
        ws.models.load_model(MODEL, 1)
    assert ws.access.audit_log(decision="denied")[0].action == "model.load"


def test_pickle_models_need_the_policy(ws: Workspace, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = frame()
    with pytest.raises(InvalidArgument, match="allow_pickle_models"):
        ws.models.log_model(Doubler(), MODEL, input_example=x.head(2))
    (home / "mlharbor.toml").write_text("[policy]\nallow_pickle_models = true\n")
    with Workspace.open(home) as trusting:
        mv = trusting.models.log_model(Doubler(), MODEL, input_example=x.head(2))
        assert mv.tags["mlharbor.serialization"] == "pickle"
        assert list(trusting.models.load_model(MODEL, mv.version).predict(x.head(2))) == list(x["a"].head(2) * 2)
    (home / "mlharbor.toml").write_text("")
    with Workspace.open(home) as strict, pytest.raises(PermissionDenied, match="pickle"):
        strict.models.load_model(MODEL, mv.version)


def test_skops_refuses_foreign_types(ws: Workspace) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = frame()
    pipe = make_pipeline(FunctionTransformer(json.dumps), LogisticRegression())
    pipe.steps[0] = ("f", FunctionTransformer(np.log1p))
    pipe.fit(x, y)
    mv = ws.models.log_model(pipe, MODEL, input_example=x.head(2))  # numpy ufunc: trusted
    assert mv.tags["mlharbor.serialization"] == "skops"
    bad = make_pipeline(FunctionTransformer(json.loads), LogisticRegression())
    with pytest.raises(InvalidArgument, match="skops cannot load safely"):
        ws.models.log_model(bad, MODEL)


def test_failing_predict_on_example_is_user_code(ws: Workspace) -> None:
    from mlharbor.errors import UserCodeError

    with pytest.raises(UserCodeError, match="input example"):
        ws.models.log_model(fitted(), MODEL, input_example=pd.DataFrame({"z": [1.0]}))


def test_an_input_example_mlflow_cannot_check_is_a_clear_error(ws: Workspace) -> None:
    from mlharbor.errors import InvalidArgument

    model = LogisticRegression().fit([[0.0], [1.0], [0.1], [0.9]], [0, 1, 0, 1])
    with pytest.raises(InvalidArgument, match=r"input example: .*DataFrame"):
        ws.models.log_model(model, MODEL, input_example=[[0.5]])  # a list of lists: MLflow refuses it
    with pytest.raises(Exception, match="does not exist"):
        ws.models.get_model(MODEL)  # nothing was registered


def test_request_and_approve_workflow(home: Path) -> None:
    with as_user(home, "dana") as dana:
        v1 = dana.models.log_model(fitted(0), MODEL, input_example=frame()[0].head(2), description="first")
        v2 = dana.models.log_model(fitted(1), MODEL, input_example=frame()[0].head(2), description="second")
        req = dana.models.request_transition(MODEL, v1.version, "Production", "ready")
        assert req.status is RequestStatus.PENDING
        with pytest.raises(Exception, match="already exists"):
            dana.models.request_transition(MODEL, v1.version, "production")
        with pytest.raises(PermissionDenied):
            dana.models.approve(req.id)  # data scientists cannot approve Production
    with as_user(home, "vic") as vic, pytest.raises(PermissionDenied):
        vic.models.request_transition(MODEL, v1.version, "Staging")
    with as_user(home, "mel") as mel:
        assert [r.id for r in mel.models.requests(MODEL)] == [req.id]
        moved = mel.models.approve(req.id, "lgtm")
        assert moved.stage is ModelStage.PRODUCTION
        with pytest.raises(Conflict):
            mel.models.approve(req.id)
        engine = mel.services.tracking_engine()
        assert engine.aliases(MODEL) == {"champion": 1}
        mine = mel.models.request_transition(MODEL, v2.version, "Production")
        with pytest.raises(PermissionDenied, match="self-approval"):
            mel.models.approve(mine.id)
        mel.models.cancel(mine.id)
    with as_user(home, "dana") as dana:
        r2 = dana.models.request_transition(MODEL, v2.version, "Production")
    with as_user(home, "mel") as mel:
        mel.models.approve(r2.id)
        stages = {v.version: v.stage for v in mel.models.versions(MODEL)}
        assert stages == {1: ModelStage.ARCHIVED, 2: ModelStage.PRODUCTION}
        assert mel.services.tracking_engine().aliases(MODEL) == {"champion": 2}
        back = mel.models.rollback(MODEL, "v2 misbehaves")
        assert back.version == 1 and back.stage is ModelStage.PRODUCTION
        assert {v.version: v.stage for v in mel.models.versions(MODEL)} == {1: ModelStage.PRODUCTION,
                                                                           2: ModelStage.ARCHIVED}
        assert mel.models.get_version(MODEL, "champion").version == 1
        history = [(c.version, c.from_stage.value, c.to_stage.value, c.actor) for c in mel.models.history(MODEL)]
        assert history == [(1, "None", "Production", "mel"), (1, "Production", "Archived", "mel"),
                           (2, "None", "Production", "mel"), (2, "Production", "Archived", "mel"),
                           (1, "Archived", "Production", "mel")]
        with mel.services.store.transaction() as tx:
            kinds = [e.kind for e in tx.outbox.after(0, limit=1000)]
        assert kinds.count(events.VERSION_REGISTERED) == 2 and kinds.count(events.STAGE_CHANGED) == 5
        assert events.TRANSITION_CANCELLED in kinds and events.ALIAS_CHANGED in kinds
    with Workspace.open(home) as admin:
        actions = {e.action for e in admin.access.audit_log(limit=200)}
        assert {"model.register", "model.request_transition", "model.approve_transition", "model.rollback",
                "model.stage_changed", "model.cancel_transition"} <= actions


def test_plain_mlflow_loads_the_champion(ws: Workspace) -> None:
    import mlflow

    x, _ = frame()
    mv = ws.models.log_model(fitted(), MODEL, input_example=x.head(2), description="churn")
    assert ws.settings is not None and not ws.settings.policy.allow_self_approval
    with as_user(ws.settings.project_root, "dana") as dana:
        req = dana.models.request_transition(MODEL, mv.version, "Production")
    ws.models.approve(req.id)
    uri = ws.settings.current.tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        assert list(model.predict(x.head(3))) == list(fitted().predict(x.head(3)))
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def test_bad_references(ws: Workspace) -> None:
    with pytest.raises(NotFound):
        ws.models.get_version(MODEL, 1)
    ws.models.log_model(fitted(), MODEL, input_example=frame()[0].head(2))
    with pytest.raises(NotFound, match="champion"):
        ws.models.load_model(f"models:/{MODEL}@champion")
    with pytest.raises(InvalidArgument):
        ws.models.load_model("models:/../../etc")
    with pytest.raises(InvalidArgument, match="stage"):
        ws.models.request_transition(MODEL, 1, "Prod-ish")
    with pytest.raises(InvalidArgument):
        ws.models.log_model(fitted(), "no_dots")
    with pytest.raises(Conflict):
        ws.models.request_transition(MODEL, 1, "None")


def test_failing_checks_block_until_an_admin_overrides(home: Path) -> None:
    with as_user(home, "dana") as dana:
        mv = dana.models.log_model(fitted(), MODEL, input_example=frame()[0].head(2))  # no description
        req = dana.models.request_transition(MODEL, mv.version, "Production")
        report = dana.models.get_version(MODEL, mv.version).checks
    assert report is not None and report["request_id"] == req.id and not report["passed"]
    results = {r["name"]: r for r in report["results"]}
    assert set(results) == {"description_present", "signature_present", "artifact_hashes_valid", "loads_and_predicts"}
    assert not results["description_present"]["passed"]
    infra = results["loads_and_predicts"]
    assert infra["passed"] and "predicted 2 example row(s)" in infra["detail"]
    with as_user(home, "mel") as mel:
        assert mel.models.get_version(MODEL, mv.version).tags["mlharbor.check.description_present"] == "failed"
        with pytest.raises(Conflict, match="description_present"):
            mel.models.approve(req.id)
        with pytest.raises(PermissionDenied):  # ML engineers approve, only admins override checks
            mel.models.approve(req.id, override_reason="urgent fix")
    with Workspace.open(home) as admin:
        moved = admin.models.approve(req.id, override_reason="hotfix, description follows")
        assert moved.stage is ModelStage.PRODUCTION
        overrides = admin.access.audit_log(action="model.checks_override")
        assert overrides and overrides[0].details["reason"] == "hotfix, description follows"
        engine = admin.services.tracking_engine()
        tags = engine.client.get_model_version(MODEL, str(mv.version)).tags
        assert tags["mlharbor.check.description_present"] == "failed"


def test_configured_checks(ws: Workspace, home: Path) -> None:
    x, _ = frame()
    mv = ws.models.log_model(fitted(), MODEL, input_example=x.head(2), description="d", tags={"team": "risk"})
    with pytest.raises(InvalidArgument, match="unknown checks"):
        ws.models.update_model(MODEL, checks={"no_such_check": {}})
    ws.models.update_model(MODEL, checks={
        "required_tags": {"tags": ["team", "owner"]}, "model_card_filled": {"fields": ["intended_use"]},
        "size_budget": {"max_mb": 50}, "latency_budget": {"max_ms": 5000}, "evaluation_blessed": {}})
    report = ws.models.run_checks(MODEL, mv.version)
    results = {r["name"]: r for r in report["results"]}
    assert not results["required_tags"]["passed"] and "owner" in results["required_tags"]["detail"]
    assert not results["model_card_filled"]["passed"] and not results["evaluation_blessed"]["passed"]
    assert results["size_budget"]["passed"] and results["latency_budget"]["passed"]
    assert "p50" in results["latency_budget"]["detail"]
    ws.models.set_card_fields(MODEL, mv.version, intended_use="tests")
    ws.models.update_model(MODEL, tags={"owner": "ana"})
    ws.models.update_version(MODEL, mv.version, evaluation={"blessed": True, "reasons": ["ok"]})
    assert ws.models.run_checks(MODEL, mv.version)["passed"]
    with ws.services.store.transaction() as tx:
        assert tx.outbox.after(0, kinds=[events.CHECKS_COMPLETED])[-1].payload["passed"] is True


def test_infra_validation_runs_in_a_fresh_process(ws: Workspace, home: Path) -> None:
    x, _ = frame()
    (home / "mlharbor.toml").write_text("[policy]\nallow_pickle_models = true\n")
    with Workspace.open(home) as trusting:
        mv = trusting.models.log_model(Doubler(), MODEL, input_example=x.head(2), description="d")
        assert trusting.models.run_checks(MODEL, mv.version)["passed"] is False  # Doubler lives in this test module
    (home / "mlharbor.toml").write_text("")
    report = ws.models.run_checks(MODEL, mv.version)
    infra = next(r for r in report["results"] if r["name"] == "loads_and_predicts")
    assert not infra["passed"] and "pickle" in infra["detail"]


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_boosting_models_use_their_native_formats(ws: Workspace, framework: str) -> None:
    x, y = frame(200)
    if framework == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=8, max_depth=3).fit(x, y)
        expected_file = "data/payload/model.json"
    else:
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=8, verbose=-1).fit(x, y)
        expected_file = "data/payload/model.txt"
    mv = ws.models.log_model(model, MODEL, input_example=x.head(3), description=framework)
    assert mv.flavor == framework and mv.tags["mlharbor.serialization"] == framework
    assert expected_file in mv.manifest and not any(f.endswith((".pkl", ".skops")) for f in mv.manifest)
    assert any(p.split("==")[0] in (framework, f"{framework}-cpu") for p in mv.tags["mlharbor.requirements"].split())
    loaded = ws.models.load_model(MODEL, mv.version)
    assert list(loaded.predict(x.head(20))) == list(model.predict(x.head(20)))
    assert np.allclose(loaded.model.predict_proba(x.head(20)), model.predict_proba(x.head(20)), atol=1e-6)
    assert ws.models.run_checks(MODEL, mv.version)["passed"] is True  # loads and predicts in a fresh process
