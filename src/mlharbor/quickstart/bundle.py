"""The starter bundle: the quickstart's pipeline as jobs (written by ``mlharbor init`` and stage 4)."""

from __future__ import annotations

from pathlib import Path

BUNDLE_FILE = "mlharbor.yml"

STARTER_BUNDLE = """\
# mlharbor bundle: this project's jobs, experiment and registered model, deployed per target with
#   mlharbor bundle validate | plan | deploy | run JOB | destroy   [--target T] [--var NAME=VALUE]
# Deploying twice changes nothing; `plan` shows what a deploy would change. Names may use
# ${var.NAME}, ${bundle.target}, ${workspace.current_user} and ${resources.KIND.KEY.name}.

bundle:
  name: quickstart

variables:
  model:
    default: dev.ml.generous_tip
    description: the registered model the pipeline trains and promotes

resources:
  experiments:
    training:
      name: quickstart-generous-tip

  registered_models:
    generous_tip:
      name: ${var.model}
      description: Probability that a trip ends with a generous tip
      checks:
        description_present: {}
        signature_present: {}
        artifact_hashes_valid: {}
        loads_and_predicts: {}
        evaluation_blessed: {}
        latency_budget: {max_ms: 100}

  jobs:
    features:
      description: Refresh the feature tables and the training set when new trips land
      trigger: {kind: table_update, tables: [dev.raw.trips]}
      # schedule: {cron: "0 3 * * *", timezone: UTC}     # or nightly
      tasks:
        refresh:
          target: mlharbor.quickstart.tasks:refresh_features
          max_retries: 1
          timeout_s: 3600

    training:
      description: Train a challenger, evaluate it against the champion with compliance checks, promote it when blessed
      trigger: {kind: job_completion, job: "${resources.jobs.features.name}"}
      tasks:
        train:
          target: mlharbor.quickstart.tasks:train
          parameters:
            model: ${resources.registered_models.generous_tip.name}
            experiment: ${resources.experiments.training.name}
          timeout_s: 3600
        evaluate:
          target: mlharbor.quickstart.tasks:evaluate
          depends_on: [train]
          parameters:
            model: ${resources.registered_models.generous_tip.name}
            version: "{{tasks.train.values.version}}"
        blessed:
          kind: condition
          depends_on: [evaluate]
          parameters: {left: "{{tasks.evaluate.values.blessed}}", op: "==", right: true}
        promote:
          target: mlharbor.quickstart.tasks:promote
          depends_on: [{task: blessed, outcome: "true"}]
          parameters: {request_id: "{{tasks.evaluate.values.request_id}}"}

targets:
  dev:
    default: true        # the embedded default: jobs named as above, triggers live
  sandbox:
    mode: development    # your own copy: names prefixed dev_<you>_, every schedule and trigger paused
    workspace_target: dev
  # prod:
  #   mode: production
  #   run_as: svc_pipeline          # required: the service principal production runs act as
  #   workspace_target: prod
  #   variables: {model: prod.ml.generous_tip}
"""


def write_bundle(directory: Path, force: bool = False) -> bool:
    """Write the starter bundle to ``directory``; False when one exists (and ``force`` is not set)."""
    path = directory / BUNDLE_FILE
    if path.exists() and not force:
        return False
    path.write_text(STARTER_BUNDLE, encoding="utf-8")
    return True
