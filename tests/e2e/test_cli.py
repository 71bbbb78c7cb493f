"""The ``mlharbor`` command line against a real project in a temporary directory.

Most cases run in-process with Typer's CliRunner (the working directory is the project); the
entry-point and server cases run ``python -m mlharbor.cli`` as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from mlharbor.cli.main import app
from mlharbor.cli.server import is_loopback, redact_url
from mlharbor.config import CONFIG_FILE, load_settings
from mlharbor.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from mlharbor.workspace import Workspace

pytestmark = pytest.mark.e2e

SECRET = re.compile(r"mlh_[A-Za-z0-9_\-]{20,}")
TRIPS = pa.table({
    "trip_id": pa.array([1, 2, 3, 4], pa.int64()),
    "fare": [10.0, 12.5, 7.0, 30.0],
    "zone": ["a", "b", "a", "c"],
})


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLHARBOR_")}
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initialised project as the working directory, with no MLHARBOR_* variables set."""
    for key in list(os.environ):
        if key.startswith("MLHARBOR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that Rich never folds a cell we look for
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return tmp_path


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input, env=env)


def ok(*args: str, env: dict[str, str] | None = None) -> Result:
    result = run(*args, env=env)
    assert result.exit_code == 0, f"mlharbor {' '.join(args)} failed:\n{result.output}"
    return result


def fails(*args: str) -> str:
    """Run a command that must fail cleanly; return its error line."""
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stdout == ""
    return result.stderr.strip()


@pytest.fixture
def trips(project: Path) -> str:
    with Workspace.open(project) as ws:
        ws.tables.create("dev.raw.trips", TRIPS.schema, comment="test trips", tags={"team": "cli"})
        ws.tables.write("dev.raw.trips", TRIPS.slice(0, 2))
        ws.tables.write("dev.raw.trips", TRIPS.slice(2), txn_id="second")
    return "dev.raw.trips"


# --- init -----------------------------------------------------------------------------------


def test_init_writes_a_loadable_config_and_refuses_to_overwrite(project: Path) -> None:
    path = project / CONFIG_FILE
    text = path.read_text()
    assert 'default_target = "dev"' in text
    assert "postgresql+psycopg://" in text and "s3://" in text and "storage_options" in text
    settings = load_settings(project, environ={})
    assert {"dev", "staging", "prod"} <= set(settings.targets)
    assert settings.targets["prod"].metadata_url == f"sqlite:///{project / '.mlharbor' / 'metadata.db'}"

    path.write_text(text + "\n# mine\n")
    assert "--force" in fails("init")
    assert path.read_text().endswith("# mine\n")
    ok("init", "--force")
    assert path.read_text() == text


def test_init_with_project_option(tmp_path: Path, project: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    ok("-C", str(other), "init")
    assert (other / CONFIG_FILE).is_file()


# --- tables ---------------------------------------------------------------------------------


def test_tables_ls_and_describe(trips: str) -> None:
    out = ok("tables", "ls").stdout
    assert trips in out and "test trips" in out
    listed = json.loads(ok("tables", "ls", "--json").stdout)
    assert [t["name"] for t in listed] == [trips]
    assert listed[0]["tags"] == {"team": "cli"}
    assert re.match(r"\d{4}-\d\d-\d\dT", listed[0]["created_at"])  # ISO datetimes
    assert json.loads(ok("tables", "ls", "--catalog", "prod", "--json").stdout) == []

    out = ok("tables", "describe", trips).stdout
    for expected in ("environment", "dev", "fare", "double", "zone", "string", "rows", "4"):
        assert expected in out
    described = json.loads(ok("tables", "describe", trips, "--json").stdout)
    assert described["version"] == 2 and described["num_rows"] == 4
    assert [c["name"] for c in described["columns"]] == ["trip_id", "fare", "zone"]


def test_tables_head_history_sql_and_changes(trips: str) -> None:
    out = ok("tables", "head", trips, "-n", "4").stdout
    assert "trip_id" in out and "12.5" in out and "30.0" in out
    assert len(json.loads(ok("tables", "head", trips, "-n", "2", "--json").stdout)) == 2
    rows = json.loads(ok("tables", "head", trips, "--json", "--filter", "fare > 11",
                         "--columns", "trip_id,fare").stdout)
    assert sorted(r["trip_id"] for r in rows) == [2, 4] and set(rows[0]) == {"trip_id", "fare"}
    assert len(json.loads(ok("tables", "head", trips, "--version", "1", "--json").stdout)) == 2

    history = json.loads(ok("tables", "history", trips, "--json").stdout)
    assert [c["version"] for c in history] == [2, 1, 0]
    assert history[0]["txn_id"] == "second"
    out = ok("tables", "history", trips, "--limit", "1").stdout
    assert "second" in out and "+2" in out

    out = ok("tables", "sql", f"SELECT zone, count(*) AS n FROM {trips} GROUP BY zone ORDER BY zone").stdout
    assert "zone" in out and "a" in out
    query = f"SELECT * FROM {trips} ORDER BY trip_id"
    rows = json.loads(ok("tables", "sql", query, "--json", "--limit", "3").stdout)
    assert [r["trip_id"] for r in rows] == [1, 2, 3]
    assert "3 of 4 rows shown" in ok("tables", "sql", f"SELECT * FROM {trips}", "--limit", "3").stderr

    changes = json.loads(ok("tables", "changes", trips, "--from", "1", "--json").stdout)
    assert sorted(r["trip_id"] for r in changes) == [3, 4]
    assert {r["_change_type"] for r in changes} == {"insert"}


def test_tables_optimize_vacuum_and_drop(trips: str) -> None:
    ok("tables", "optimize", trips)
    assert "would be deleted" in ok("tables", "vacuum", trips, "--retain-hours", "0", "--dry-run").stderr
    ok("tables", "vacuum", trips, "--retain-hours", "0")
    assert json.loads(ok("tables", "head", trips, "--json", "-n", "100").stdout).__len__() == 4

    refused = run("tables", "drop", trips, input="n\n")
    assert refused.exit_code == 1
    assert json.loads(ok("tables", "ls", "--json").stdout)
    ok("tables", "drop", trips, "--yes")
    assert json.loads(ok("tables", "ls", "--json").stdout) == []


def test_errors_print_one_clean_line(trips: str) -> None:
    assert "dev.raw.nope" in fails("tables", "describe", "dev.raw.nope")
    assert "invalid table name" in fails("tables", "head", "a..b")
    assert "unknown role" in fails("grants", "add", "nobody", "--role", "superuser")
    assert "unknown catalog" in fails("tables", "describe", "qa.raw.trips")
    assert "unknown target" in fails("-t", "qa", "tables", "ls")
    assert "--columns" in fails("tables", "head", trips, "--columns", ",")


def test_debug_flag_keeps_the_exception(trips: str) -> None:
    result = run("--debug", "tables", "describe", "dev.raw.nope")
    assert result.exit_code == 1
    assert isinstance(result.exception, NotFound)


def test_usage_errors_exit_2(project: Path) -> None:
    assert run("tables", "head").exit_code == 2
    assert run("tables", "head", "dev.raw.t", "-n", "0").exit_code == 2
    assert run("no-such-command").exit_code == 2


# --- identity: users, tokens, grants, audit ---------------------------------------------------


def test_token_lifecycle(project: Path) -> None:
    ok("users", "create", "alice", "--display-name", "Alice A.")
    own = ok("tokens", "create", "--name", "mine")  # the local admin is a principal and may hold tokens
    assert len(set(SECRET.findall(own.stdout))) == 1

    created = ok("tokens", "create", "--name", "laptop", "--principal", "alice")
    secrets = SECRET.findall(created.stdout)
    assert len(set(secrets)) == 1, created.stdout
    secret = secrets[0]
    assert "will not be shown again" in created.stdout
    token_id = re.search(r"Token id (\w+)", created.stderr).group(1)  # type: ignore[union-attr]

    with Workspace.open(project) as ws:
        assert ws.auth.authenticate(secret).principal == "alice"

    for args in (("tokens", "ls"), ("tokens", "ls", "--all"), ("tokens", "ls", "--principal", "alice"),
                 ("tokens", "ls", "--json")):
        out = ok(*args).stdout
        assert secret not in out and secret[12:] not in out
        assert "laptop" in out and "token_hash" not in out
    listed = json.loads(ok("tokens", "ls", "--json", "--principal", "alice").stdout)
    assert [t["id"] for t in listed] == [token_id] and listed[0]["revoked_at"] is None
    assert secret.startswith(listed[0]["prefix"])

    ok("tokens", "revoke", token_id)
    with Workspace.open(project) as ws, pytest.raises(Unauthenticated):
        ws.auth.authenticate(secret)
    assert json.loads(ok("tokens", "ls", "--json", "--all").stdout)[0]["revoked_at"] is not None
    assert "no token" in fails("tokens", "revoke", "does_not_exist")
    assert "either" in fails("tokens", "ls", "--all", "--principal", "alice")


def test_users_grants_denial_and_audit(project: Path) -> None:
    ok("users", "create", "bob")
    ok("users", "create", "ci_bot", "--service")
    users = {u["name"]: u for u in json.loads(ok("users", "ls", "--json").stdout)}
    assert users["ci_bot"]["kind"] == "service" and users["bob"]["active"] is True

    ok("grants", "add", "bob", "--role", "data_scientist")
    ok("grants", "add", "ci_bot", "--role", "ml_engineer", "--env", "staging", "--env", "prod")
    grants = json.loads(ok("grants", "ls", "--principal", "bob", "--json").stdout)
    assert {g["environment"]: g["role"] for g in grants} == {
        "dev": "data_scientist", "staging": "data_scientist", "prod": "data_scientist"}
    assert "ml_engineer" in ok("grants", "ls").stdout

    with Workspace.open(project, principal="bob") as ws:
        ws.tables.write("dev.sandbox.scratch", TRIPS)  # data scientists write in dev
        with pytest.raises(PermissionDenied):
            ws.tables.write("prod.raw.trips", TRIPS)  # ... and only read prod

    denied = json.loads(ok("audit", "--decision", "denied", "--json").stdout)
    assert any(e["actor"] == "bob" and e["resource"] == "table:prod.raw.trips" for e in denied)
    assert all(e["decision"] == "denied" for e in denied)
    out = ok("audit", "--principal", "bob", "--limit", "10").stdout
    assert "denied" in out and "table:prod.raw.trips" in out
    assert "decision" in fails("audit", "--decision", "maybe")

    ok("grants", "rm", "bob", "--env", "prod")
    grants = json.loads(ok("grants", "ls", "--principal", "bob", "--json").stdout)
    assert {g["environment"] for g in grants} == {"dev", "staging"}
    ok("users", "deactivate", "bob")
    assert json.loads(ok("users", "ls", "--json").stdout)[0]["active"] is False
    with Workspace.open(project, principal="bob") as ws, pytest.raises(PermissionDenied):
        ws.tables.write("dev.sandbox.scratch", TRIPS)
    ok("users", "activate", "bob")
    assert "already exists" in fails("users", "create", "bob")
    assert "invalid principal name" in fails("users", "create", "Bad Name")


def test_whoami_local(project: Path) -> None:
    out = ok("whoami").stdout
    assert "local admin" in out and "admin" in out
    info = json.loads(ok("whoami", "--json").stdout)
    assert info["local_admin"] is True and info["roles"]["prod"] == "admin"


# --- quickstart -------------------------------------------------------------------------------


@pytest.mark.timeout(1800)  # three quickstarts, each with its scheduled pipeline in subprocesses
def test_quickstart_and_fresh(project: Path) -> None:
    first = ok("quickstart", "--rows", "3000", "--seed", "5")
    names = {t["name"] for t in json.loads(ok("tables", "ls", "--json").stdout)}
    assert {"dev.raw.trips", "dev.raw.zones", "dev.raw.drivers"} <= names
    with Workspace.open(project) as ws:
        versions = {n: ws.tables.describe(n).version for n in ("dev.raw.zones", "dev.raw.drivers")}
    versions_json = json.loads(ok("models", "versions", "dev.ml.generous_tip", "--json").stdout)
    # stage 3 promoted v1; stage 4's training job trained v2 on the new day and promoted it only if blessed
    assert [(v["version"], v["created_by"]) for v in versions_json] == [(1, "qs_scientist"), (2, "qs_scientist")]
    assert [v["stage"] for v in versions_json] in (["Production", "None"], ["Archived", "Production"])
    report = json.loads(ok("models", "checks", "dev.ml.generous_tip", "champion", "--json").stdout)
    assert report["passed"] is True and {r["name"] for r in report["results"]} >= {"loads_and_predicts",
                                                                                   "evaluation_blessed"}
    history = json.loads(ok("models", "history", "dev.ml.generous_tip", "--json").stdout)
    assert (history[0]["to_stage"], history[0]["actor"]) == ("Production", "qs_engineer")
    # stage 4: the bundle deployed, a day of trips landed, the scheduler ran features then training
    assert "deployed bundle quickstart to dev" in first.stdout and (project / "mlharbor.yml").is_file()
    assert "scheduler fired features (tables)" in first.stdout and "scheduler fired training (job_run)" in first.stdout
    runs = {r["job_name"]: r for r in json.loads(ok("jobs", "runs", "--json").stdout)}
    assert runs["features"]["state"] == "succeeded" and runs["training"]["state"] == "succeeded"
    shown = json.loads(ok("jobs", "show", runs["training"]["id"], "--json").stdout)
    training = {t["task_key"]: t for t in shown["tasks"]}
    assert training["train"]["values"]["version"] == 2
    assert training["blessed"]["values"]["outcome"] == str(training["evaluate"]["values"]["blessed"]).lower()
    assert training["promote"]["state"] == ("succeeded" if training["evaluate"]["values"]["blessed"] else "excluded")
    features = json.loads(ok("jobs", "show", runs["features"]["id"], "--json").stdout)["tasks"][0]
    assert {"dev.features.driver_daily", "dev.training.generous_tip"} <= set(features["io"]["written"])
    assert "dev.raw.trips" in features["io"]["read"]

    again = ok("quickstart", "--rows", "3000", "--seed", "5")  # idempotent: every write carries a txn id
    assert again.stdout.count("(incremental): 0 key(s) written") == 2  # feature tables merged, nothing new
    assert "evaluation of v3" in again.stdout and "against champion v" in " ".join(again.stdout.split())
    assert "bundle quickstart is already deployed to dev as defined" in again.stdout
    assert "day 2 after the generated period" in again.stdout
    stages = [v["stage"] for v in json.loads(ok("models", "versions", "dev.ml.generous_tip", "--json").stdout)]
    assert len(stages) == 4 and stages.count("Production") == 1
    card = ok("models", "card", "dev.ml.generous_tip", "1").stdout
    assert "| dev.features.driver_daily |" in card and "roc_auc" in card
    runs = json.loads(ok("runs", "ls", "quickstart-generous-tip", "--json").stdout)
    assert len(runs) == 4 and all(r["status"] == "FINISHED" for r in runs)  # stage 3 and the training job, twice
    with Workspace.open(project) as ws:
        assert {n: ws.tables.describe(n).version for n in versions} == versions
        period = ws.sql("SELECT count(*) AS n FROM dev.raw.trips WHERE pickup_ts < TIMESTAMPTZ '2026-07-01'")
        assert period.column("n")[0].as_py() == 3000  # the generated period, once; then one new day per run
        assert ws.tables.describe("dev.raw.trips").num_rows > 3000
        status = ws.features.online_status("dev.features.driver_daily")
        assert status.published_version is not None and status.behind == 0
        assert ws.features.get_function("dev.features.fare_per_km").version == 1  # same code: same version
        spec_file = project / ".mlharbor" / "quickstart" / "feature_spec.json"
        assert "dev.features.fare_per_km" in spec_file.read_text()
    with Workspace.open(project) as ws:
        ws.tables.write("dev.raw.mine", TRIPS)
    result = ok("quickstart", "--rows", "2000", "--seed", "5", "--fresh")
    dropped = result.stderr.split("quickstart table(s): ", 1)[1].splitlines()[0].split(", ")
    assert {"dev.raw.trips", "dev.raw.zones", "dev.raw.drivers"} <= set(dropped)
    assert "dev.raw.mine" not in dropped
    with Workspace.open(project) as ws:
        period = ws.sql("SELECT count(*) AS n FROM dev.raw.trips WHERE pickup_ts < TIMESTAMPTZ '2026-07-01'")
        assert period.column("n")[0].as_py() == 2000
        assert ws.tables.describe("dev.raw.mine").num_rows == 4  # not the quickstart's: kept


# --- the real entry point and server ---------------------------------------------------------


def _entry(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlharbor.cli", *args], check=False, capture_output=True,
                          text=True, timeout=120, env=env or _clean_env())


def test_entry_point_errors_without_traceback(project: Path) -> None:
    proc = _entry(["-C", str(project), "tables", "describe", "dev.raw.nope"])
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: table dev.raw.nope does not exist")
    assert "Traceback" not in proc.stderr
    debug = _entry(["-C", str(project), "tables", "describe", "dev.raw.nope"],
                   env={**_clean_env(), "MLHARBOR_DEBUG": "1"})
    assert debug.returncode == 1 and "NotFound" in debug.stderr


@pytest.fixture
def live_server(project: Path, server_factory: Any) -> Iterator[dict[str, Any]]:
    """``mlharbor -C project server`` as a subprocess on a free port; stopped by PID afterwards."""
    with server_factory(project) as server:
        yield server


def test_server_bootstraps_admin_and_serves(live_server: dict[str, Any]) -> None:
    url, token = live_server["url"], live_server["token"]
    assert "Bootstrap admin token (shown once)" in live_server["stdout"]
    assert f"export MLHARBOR_TOKEN={token}" in live_server["stdout"]
    assert live_server["health"].status_code == 200
    assert httpx.get(f"{url}/api/v1/whoami").status_code == 401
    me = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["principal"] == "admin" and me.json()["roles"]["prod"] == "admin"


def test_cli_through_the_server(live_server: dict[str, Any], project: Path) -> None:
    env = {"MLHARBOR_URL": live_server["url"], "MLHARBOR_TOKEN": live_server["token"]}
    with Workspace.open(project) as ws:
        ws.tables.write("dev.raw.trips", TRIPS)
    assert json.loads(ok("whoami", "--json", env=env).stdout)["principal"] == "admin"
    assert [t["name"] for t in json.loads(ok("tables", "ls", "--json", env=env).stdout)] == ["dev.raw.trips"]
    rows = json.loads(ok("tables", "head", "dev.raw.trips", "--json", "-n", "2", env=env).stdout)
    assert len(rows) == 2
    ok("users", "create", "carol", env=env)
    ok("grants", "add", "carol", "--role", "viewer", env=env)
    created = ok("tokens", "create", "--name", "ci", "--principal", "carol", env=env)
    secret = SECRET.search(created.stdout).group(0)  # type: ignore[union-attr]
    carol = {"MLHARBOR_URL": live_server["url"], "MLHARBOR_TOKEN": secret}
    assert json.loads(ok("whoami", "--json", env=carol).stdout)["roles"]["dev"] == "viewer"
    denied = run("tables", "drop", "dev.raw.trips", "--yes", env=carol)
    assert denied.exit_code == 1 and denied.stderr.startswith("error: carol lacks 'write' in dev")
    assert "denied" in ok("audit", "--principal", "carol", env=env).stdout
    bad = run("tables", "ls", env={**env, "MLHARBOR_TOKEN": "mlh_wrong"})
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ")


# --- helpers ----------------------------------------------------------------------------------


def test_loopback_and_redaction_helpers() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("example.com")
    assert redact_url("postgresql+psycopg://u:s3cret@db:5432/m") == "postgresql+psycopg://u:***@db:5432/m"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_invalid_argument_is_the_error_for_bad_config(project: Path) -> None:
    (project / CONFIG_FILE).write_text("[nonsense]\n")
    assert "unknown sections" in fails("tables", "ls")
    with pytest.raises(InvalidArgument):
        load_settings(project, environ={})


# --- features ------------------------------------------------------------------------------------


def test_features_ls_and_describe(project: Path) -> None:
    from datetime import UTC, datetime

    stats = pa.table({"driver_id": pa.array([1, 2], pa.int64()),
                      "ts": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
                      "trips_7d": [3.0, 4.0]})
    with Workspace.open(project) as ws:
        ws.features.create_table("dev.features.driver_stats", stats, primary_keys="driver_id", timestamp_keys="ts",
                                 description="rolling stats", tags={"team": "pricing"})
    listed = json.loads(ok("features", "ls", "--json").stdout)
    assert [r["name"] for r in listed] == ["dev.features.driver_stats"] and listed[0]["primary_keys"] == "driver_id"
    assert "dev.features.driver_stats" in ok("features", "ls", "--search", "rolling").stdout
    assert json.loads(ok("features", "ls", "--tag", "team=ops", "--json").stdout) == []
    described = json.loads(ok("features", "describe", "dev.features.driver_stats", "--json").stdout)
    assert described["features"] == ["trips_7d"] and described["latest_timestamp"].startswith("2026-01-01")
    assert "latest timestamp" in ok("features", "describe", "dev.features.driver_stats").stdout
    assert "does not exist" in fails("features", "describe", "dev.raw.nothing")


# --- features: publish, lookup, functions ------------------------------------------------------


def test_features_publish_lookup_and_functions(project: Path) -> None:
    from datetime import UTC, datetime

    from mlharbor.features.definitions import FeatureFunction, FeatureLookup

    t = datetime(2026, 1, 1, tzinfo=UTC)
    zones = pa.table({"city": ["x", "x"], "zone": pa.array([1, 2], pa.int64()), "ts": pa.array([t, t]),
                      "demand": [0.5, 0.7]})
    with Workspace.open(project) as ws:
        ws.features.create_table("dev.features.zones", zones, primary_keys=["city", "zone"], timestamp_keys="ts")
    out = json.loads(ok("features", "publish", "dev.features.zones", "--mode", "snapshot", "--ttl", "600",
                        "--json").stdout)
    assert out["mode"] == "snapshot" and out["rows_written"] == 2
    text = ok("features", "publish", "dev.features.zones").stderr
    assert "Published dev.features.zones version 1 (incremental since version 1): 0 row(s) written" in text
    assert "version 1 at" in ok("features", "describe", "dev.features.zones").stdout
    rows = json.loads(ok("features", "lookup", "dev.features.zones", "--key", "city=x,zone=2", "--key",
                         "city=y,zone=1", "--json").stdout)
    assert [(r["city"], r["zone"], r["demand"]) for r in rows] == [("x", 2, 0.7), ("y", 1, None)]
    assert "0.7" in ok("features", "lookup", "dev.features.zones", "--key", "city=x,zone=2").stdout
    fn = project / "fns.py"
    fn.write_text("def scaled(demand):\n    return None if demand is None else demand * 10\n")
    assert "version 1" in ok("features", "functions", "register", str(fn), "--name", "dev.features.scaled",
                             "--entry-point", "scaled", "--return-type", "double").stderr
    assert "dev.features.scaled" in ok("features", "functions", "ls").stdout
    assert "demand * 10" in ok("features", "functions", "show", "dev.features.scaled").stdout
    with Workspace.open(project) as ws:
        labels = pa.table({"city": ["x"], "zone": pa.array([1], pa.int64()), "ts": pa.array([t]), "y": [1]})
        spec = ws.features.create_training_set(labels, [
            FeatureLookup("dev.features.zones", ["city", "zone"], timestamp_lookup_key="ts"),
            FeatureFunction("dev.features.scaled", {"demand": "demand"}, "demand10")], label="y").spec
    (project / "spec.json").write_text(spec.to_json())
    rows = json.loads(ok("features", "lookup", "--spec", "spec.json", "--key", "city=x,zone=1", "--json").stdout)
    assert rows == [{"city": "x", "zone": 1, "demand": 0.5, "demand10": 5.0}]
    assert "COLUMN=VALUE" in fails("features", "lookup", "dev.features.zones", "--key", "city")
    assert "one of them" in fails("features", "lookup", "--key", "city=x")
    assert "mode must be" in fails("features", "publish", "dev.features.zones", "--mode", "full")
    assert "cannot read" in fails("features", "functions", "register", "nope.py", "--name", "dev.features.n",
                                  "--entry-point", "f", "--return-type", "double")
