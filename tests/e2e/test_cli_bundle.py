"""``mlharbor bundle`` end to end: validate, plan, deploy (twice: idempotent), run, destroy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

BUNDLE = '''
bundle: {name: demo}
variables:
  greeting: hello
resources:
  jobs:
    hello:
      parameters: {word: "${var.greeting}"}
      schedule: "*/5 * * * *"
      tasks:
        say: {kind: python, target: "demo_tasks:say", parameters: {word: "{{job.parameters.word}}"}}
        count: {kind: sql, target: "SELECT 42 AS answer", depends_on: [say]}
targets:
  dev: {mode: development, default: true}
'''


def test_bundle_commands(tmp_path: Path, mlharbor_cli: Any) -> None:
    def cli(*args: str, check: bool = True) -> Any:
        return mlharbor_cli(tmp_path, *args, check=check)

    def said(*args: str) -> str:
        proc = cli(*args)
        return str(proc.stdout + proc.stderr)

    (tmp_path / "demo_tasks.py").write_text("def say(word):\n    print(word)\n    return {'said': word}\n")
    (tmp_path / "mlharbor.yml").write_text(BUNDLE)
    out = said("bundle", "validate")
    assert "bundle demo, target dev" in out and "jobs.hello" in out and "_hello" in out
    assert "+ create" in said("bundle", "plan")
    first = said("bundle", "deploy")
    assert "+ create" in first and "1 change(s)" in first
    assert "already deployed" in said("bundle", "deploy")
    ran = cli("bundle", "run", "hello", "--var", "greeting=bonjour", check=False)
    assert ran.returncode != 0 and "bundle deploy" in ran.stderr  # the override is not deployed
    run = json.loads(cli("bundle", "run", "hello", "--json").stdout)
    assert run["state"] == "succeeded"
    values = {t["task_key"]: t["values"] for t in run["tasks"]}
    assert values == {"say": {"said": "hello"}, "count": {"rows": 1, "first_row": {"answer": 42}}}
    jobs = json.loads(cli("jobs", "ls", "--json").stdout)
    assert len(jobs) == 1 and jobs[0].startswith("dev_") and jobs[0].endswith("_hello")
    gone = said("bundle", "destroy", "--yes")
    assert "removed 1 resource(s)" in gone
    assert json.loads(cli("jobs", "ls", "--json").stdout) == []
    bad = cli("bundle", "deploy", "--target", "prod", check=False)
    assert bad.returncode != 0 and "no target 'prod'" in bad.stderr
