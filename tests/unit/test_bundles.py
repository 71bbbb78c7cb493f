"""Bundles: mlharbor.yml resolved per target (variables, include, overrides, development and production
modes) and deployed idempotently with a plan; run and destroy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlharbor.bundles import BundleDeployment, format_plan
from mlharbor.errors import Conflict, InvalidArgument, PermissionDenied
from mlharbor.jobs.bundle import BundleFile, resolve
from mlharbor.workspace import Workspace

TASKS = '''
from mlharbor.jobs.context import current


def features(rows=3):
    return {"rows": rows}


def whoami():
    return {"principal": current().principal, "target": current().target}
'''

BUNDLE = '''
bundle:
  name: taxi
variables:
  catalog:
    default: dev
    description: where the tables live
  rows: 3
include:
  - resources/*.yml
resources:
  experiments:
    training:
      name: taxi-training
  registered_models:
    fare:
      name: ${var.catalog}.models.fare
      description: fare model
      checks: {size_budget: {max_mb: 50}}
  jobs:
    features:
      parameters: {rows: "${var.rows}"}
      schedule: {cron: "0 * * * *", timezone: Europe/Paris}
      tasks:
        build: {kind: python, target: "bundle_tasks:features", parameters: {rows: "{{job.parameters.rows}}"}}
targets:
  dev:
    mode: development
    default: true
  staging:
    presets: {name_prefix: staging_}
    variables: {catalog: staging}
  prod:
    mode: production
    run_as: svc_prod
    variables: {catalog: prod, rows: 10}
    resources:
      jobs:
        features: {max_concurrent_runs: 2}
'''

INCLUDED = '''
resources:
  jobs:
    whoami:
      trigger: {kind: job_completion, job: "${resources.jobs.features.name}"}
      tasks:
        who: {kind: python, target: "bundle_tasks:whoami"}
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "bundle_tasks.py").write_text(TASKS)
    (tmp_path / "mlharbor.yml").write_text(BUNDLE)
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "whoami.yml").write_text(INCLUDED)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in list(__import__("os").environ):
        if name.startswith("MLHARBOR_"):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def dev(project: Path) -> Iterator[Workspace]:
    with Workspace.open(project, target="dev") as ws:
        yield ws


def test_resolution_per_target(project: Path) -> None:
    bundle = BundleFile.load(project)
    assert bundle.files == ("mlharbor.yml", "resources/whoami.yml")
    dev = resolve(bundle, None, user="Alice.Smith")
    assert dev.target == "dev" and dev.mode == "development"
    assert set(dev.jobs) == {"features", "whoami"}
    features = dev.jobs["features"]
    assert features.name == "dev_alice_smith_features"
    assert features.schedule is not None and features.schedule.paused  # development pauses schedules
    assert features.parameters == {"rows": 3}  # a whole-string reference keeps the value's type
    whoami = dev.jobs["whoami"]
    assert whoami.trigger is not None and whoami.trigger.paused
    assert whoami.trigger.job == "dev_alice_smith_features"  # type: ignore[union-attr]
    assert dev.models["fare"].name == "dev.models.dev_alice_smith_fare"
    assert dev.experiments["training"].name == "dev_alice_smith_taxi-training"
    assert features.tags["bundle"] == "taxi" and features.tags["bundle_target"] == "dev"

    staging = resolve(bundle, "staging", user="alice")
    assert staging.jobs["features"].name == "staging_features"
    assert staging.models["fare"].name == "staging.models.staging_fare"
    assert staging.jobs["features"].schedule is not None and not staging.jobs["features"].schedule.paused

    prod = resolve(bundle, "prod", {"rows": 12}, user="alice")
    assert prod.jobs["features"].name == "features" and prod.jobs["features"].run_as == "svc_prod"
    assert prod.jobs["features"].max_concurrent_runs == 2  # the target's override
    assert prod.jobs["features"].parameters == {"rows": 12}  # the command line wins over the target
    assert prod.models["fare"].name == "prod.models.fare"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace("    run_as: svc_prod\n", ""), "set targets.prod.run_as"),
    (lambda s: s.replace("rows: 3\n", "rows:\n    description: no default\n").replace(", rows: 10", ""),
     "have no value"),
    (lambda s: s.replace("${var.rows}", "${var.nope}"), "unknown reference ${var.nope}"),
    (lambda s: s.replace("bundle:\n", "bundel: {}\nbundle:\n"), "unknown keys ['bundel']"),
    (lambda s: s.replace("kind: python, target", "kind: python, depends_on: [ghost], target"), "ghost"),
    (lambda s: s.replace("  - resources/*.yml", "  - ../elsewhere.yml"), "inside the project"),
    (lambda s: s + "  qa: {mode: sideways}\n", "development or production"),
    (lambda s: s.replace("{size_budget: {max_mb: 50}}", "[1]"), "checks must be a mapping"),
])
def test_bad_bundles_are_refused_with_what_to_fix(project: Path, edit: object, message: str) -> None:
    (project / "mlharbor.yml").write_text(edit(BUNDLE))  # type: ignore[operator]
    with pytest.raises(InvalidArgument, match=message.replace("[", r"\[").replace("$", r"\$").replace("{", r"\{")):
        resolve(BundleFile.load(project), "prod", user="alice")


def test_unknown_variable_and_target(project: Path) -> None:
    bundle = BundleFile.load(project)
    with pytest.raises(InvalidArgument, match="unknown variables"):
        resolve(bundle, "dev", {"colour": "red"})
    with pytest.raises(InvalidArgument, match="no target 'qa'"):
        resolve(bundle, "qa")


def test_deploy_is_idempotent_and_shows_a_plan(dev: Workspace, project: Path) -> None:
    dep = BundleDeployment.open(dev, project)
    first = dep.plan()
    assert {(c.action, c.resource) for c in first} == {
        ("create", "experiments.training"), ("create", "registered_models.fare"), ("create", "jobs.features"),
        ("create", "jobs.whoami")}
    user = dev.actor.principal  # type: ignore[union-attr]
    prefix = f"dev_{user.lower()}_".replace("-", "_").replace(".", "_")
    dep.deploy()
    assert set(dev.jobs.list()) == {f"{prefix}features", f"{prefix}whoami"}
    model = dev.models.get_model(f"dev.models.{prefix}fare")
    assert model.description == "fare model" and model.checks == {"size_budget": {"max_mb": 50}}
    assert dev.tracking.experiment_tags(f"{prefix}taxi-training") is not None  # type: ignore[union-attr]
    job = dev.jobs.get(f"{prefix}features")
    assert job.target == "dev" and job.schedule is not None and job.schedule.paused

    with dev.services.store.transaction() as tx:
        audit_before = len(tx.audit.list(limit=1000))
    again = BundleDeployment.open(dev, project)
    assert all(c.action == "unchanged" for c in again.plan())
    assert all(c.action == "unchanged" for c in again.deploy())
    with dev.services.store.transaction() as tx:
        assert len(tx.audit.list(limit=1000)) == audit_before  # nothing was written

    # an edit changes one job; a removed job is deleted; a hand edit is put back
    (project / "mlharbor.yml").write_text(BUNDLE.replace("rows: 3\n", "rows: 4\n"))
    (project / "resources" / "whoami.yml").unlink()
    (project / "mlharbor.yml").write_text(BUNDLE.replace("rows: 3\n", "rows: 4\n").replace(
        "include:\n  - resources/*.yml\n", ""))
    dep = BundleDeployment.open(dev, project)
    plan = {c.resource: c.action for c in dep.plan()}
    assert plan == {"experiments.training": "unchanged", "registered_models.fare": "unchanged",
                    "jobs.features": "update", "jobs.whoami": "delete"}
    lines = format_plan(dep.deploy())
    assert any(line.startswith("- delete") and "whoami" in line for line in lines)
    assert dev.jobs.list() == [f"{prefix}features"]
    assert dev.jobs.get(f"{prefix}features").parameters == {"rows": 4}

    from mlharbor.jobs import Job, Task, TaskKind

    dev.jobs.deploy(Job(f"{prefix}features", [Task("x", TaskKind.PYTHON, "bundle_tasks:whoami")]))
    drift = {c.resource: c for c in BundleDeployment.open(dev, project).plan()}
    assert drift["jobs.features"].action == "update" and "outside the bundle" in drift["jobs.features"].detail
    BundleDeployment.open(dev, project).deploy()
    assert dev.jobs.get(f"{prefix}features").task("build")


def test_run_and_destroy(dev: Workspace, project: Path) -> None:
    dep = BundleDeployment.open(dev, project)
    with pytest.raises(Conflict, match="deploy"):
        dep.run("features", executor="in_process")
    dep.deploy()
    run = dep.run("features", executor="in_process")
    assert run.state == "succeeded"
    assert dev.jobs.task_runs(run.id)[0].values == {"rows": 3}
    with pytest.raises(InvalidArgument, match="no job 'nope'"):
        dep.run("nope")

    done = {c.resource: c.detail for c in dep.destroy()}
    assert done == {"jobs.features": "deleted", "jobs.whoami": "deleted", "registered_models.fare": "deleted",
                    "experiments.training": "deleted"}
    assert dev.jobs.list() == []
    assert all(c.action == "create" for c in dep.plan())
    assert dep.destroy() == []
    # deploying again after a destroy restores the (MLflow-deleted) experiment
    dep.deploy()
    assert all(c.action == "unchanged" for c in dep.plan())


def test_destroy_keeps_models_with_versions(dev: Workspace, project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    dep = BundleDeployment.open(dev, project)
    dep.deploy()
    model_name = dep.bundle.models["fare"].name
    import pandas as pd

    x = pd.DataFrame({"a": [0.0, 1.0, 0.1, 0.9]})
    fitted = LogisticRegression().fit(x, [0, 1, 0, 1])
    dev.models.log_model(fitted, model_name, input_example=x.head(2))
    done = {c.resource: c.detail for c in dep.destroy()}
    assert done["registered_models.fare"].startswith("kept: registered model")
    assert dev.models.get_model(model_name).name == model_name


def test_production_runs_as_its_service_principal(project: Path) -> None:
    with Workspace.open(project, target="prod") as ws:
        with pytest.raises(InvalidArgument, match="svc_prod"):
            BundleDeployment.open(ws, project, "prod").deploy()  # the principal does not exist yet
        ws.auth.create_principal(ws.actor, "svc_prod", "service")  # type: ignore[arg-type]
        ws.auth.grant(ws.actor, "svc_prod", "ml_engineer", ["prod"])  # type: ignore[arg-type]
        dep = BundleDeployment.open(ws, project, "prod")
        dep.deploy()
        assert ws.jobs.get("whoami").run_as == "svc_prod"
        ws.jobs.run("features", executor="subprocess")
        run = ws.jobs.run("whoami", executor="subprocess")
        assert run.state == "succeeded"
        assert ws.jobs.task_runs(run.id)[0].values == {"principal": "svc_prod", "target": "prod"}
    # someone without manage cannot make jobs run as another principal
    with Workspace.open(project, target="prod") as ws:
        ws.auth.create_principal(ws.actor, "carol")  # type: ignore[arg-type]
        ws.auth.grant(ws.actor, "carol", "ml_engineer", ["prod"])  # type: ignore[arg-type]
    with Workspace.open(project, target="prod", principal="carol") as carol:
        assert all(c.action == "unchanged" for c in BundleDeployment.open(carol, project, "prod").deploy())
        with pytest.raises(PermissionDenied):
            BundleDeployment.open(carol, project, "prod", {"rows": 11}).deploy()


def test_a_job_name_belongs_to_one_target(project: Path) -> None:
    with Workspace.open(project, target="staging") as ws:
        BundleDeployment.open(ws, project, "staging").deploy()
    (project / "mlharbor.yml").write_text(BUNDLE.replace("presets: {name_prefix: staging_}", "presets: {}"))
    with Workspace.open(project, target="staging") as ws:
        BundleDeployment.open(ws, project, "staging").deploy()  # staging now deploys "features"
    with Workspace.open(project, target="prod") as ws:
        ws.auth.create_principal(ws.actor, "svc_prod", "service")  # type: ignore[arg-type]
        ws.auth.grant(ws.actor, "svc_prod", "ml_engineer", ["prod"])  # type: ignore[arg-type]
        with pytest.raises(Conflict, match="belongs to target 'staging'"):
            BundleDeployment.open(ws, project, "prod").deploy()


def test_fields_of_the_wrong_type_are_refused_with_where(project: Path) -> None:
    for bad, message in (("max_retries: x", "max_retries must be a number"),
                         ("retry_backoff: 1.0e+300", "retry_backoff"),
                         ("timeout_s: [1]", "timeout_s must be a number")):
        (project / "mlharbor.yml").write_text(BUNDLE.replace("parameters: {rows: \"{{job.parameters.rows}}\"}}",
                                                             f"parameters: {{rows: 1}}, {bad}}}"))
        with pytest.raises(InvalidArgument, match=f"resources.jobs.features: .*{message}"):
            resolve(BundleFile.load(project), "dev", user="alice")
