"""Deploying bundles (``mlharbor.yml``, :mod:`mlharbor.jobs.bundle`) into a workspace target.

:class:`BundleDeployment` compares what a bundle wants in a target with what it deployed there
before — kept in the metadata store under ``bundle:<name>:<target>`` — and with the resources as
they are now (a job edited by hand is put back), and shows it as a plan::

    + create   jobs.train                 dev_alice_taxi_train
    ~ update   registered_models.fare     dev.models.dev_alice_fare
    - delete   jobs.old                   dev_alice_taxi_old

``deploy`` applies the plan and records each change as it goes (a failure half-way leaves a state
that the next deploy continues from); deploying twice changes nothing the second time. ``destroy``
removes what the bundle deployed: jobs, experiments (MLflow keeps them restorable) and registered
models without versions (models with versions are kept and reported). ``run`` runs a bundle job
by its key once it is deployed as defined.

Bundles act through a local workspace (``Workspace.open`` on the target, with a principal on a
shared metadata store); each change is authorised and audited by the service that makes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlharbor.core.clock import utcnow
from mlharbor.errors import Conflict, InvalidArgument, NotFound
from mlharbor.jobs.bundle import BundleFile, ResolvedBundle, digest, resolve
from mlharbor.jobs.definitions import Job

if TYPE_CHECKING:
    from mlharbor.core.entities import JobRunInfo
    from mlharbor.workspace import Workspace

ACTIONS = ("create", "update", "delete", "unchanged")
_ORDER = {"experiments": 0, "registered_models": 1, "jobs": 2}


@dataclass(frozen=True)
class Change:
    action: str  # create, update, delete or unchanged
    kind: str  # jobs, experiments, registered_models
    key: str
    name: str
    detail: str = ""

    @property
    def resource(self) -> str:
        return f"{self.kind}.{self.key}"


def _env_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def state_key(bundle: str, target: str) -> str:
    return f"bundle:{bundle}:{target}"


class BundleDeployment:
    """One bundle resolved for one target, against an open local workspace."""

    def __init__(self, ws: Workspace, bundle: ResolvedBundle) -> None:
        if ws.settings is None or ws.actor is None:
            raise InvalidArgument("bundles deploy through a local workspace: open it with Workspace.open(path, "
                                  "target=..., principal=...) on the machine with the project")
        if ws.settings.target != bundle.workspace_target:
            raise InvalidArgument(f"bundle target {bundle.target} deploys to workspace target "
                                  f"{bundle.workspace_target!r}, but the workspace is open on {ws.settings.target!r}")
        from mlharbor.registry.checks import validate_config

        for key, model in bundle.models.items():
            if model.checks is not None:
                try:
                    validate_config(model.checks)
                except InvalidArgument as exc:
                    raise InvalidArgument(f"resources.registered_models.{key}.checks: {exc.message}") from None
        self.ws = ws
        self.bundle = bundle
        self._actor = ws.actor

    @classmethod
    def open(cls, ws: Workspace, root: str | Path | BundleFile = ".", target: str | None = None,
             variables: dict[str, Any] | None = None) -> BundleDeployment:
        """The bundle at ``root`` (or already loaded) for ``target``, acting as the workspace's principal.
        Variables come from ``variables``, then ``MLHARBOR_VAR_<name>`` environment variables, then the
        target's."""
        bundle = root if isinstance(root, BundleFile) else BundleFile.load(root)
        from_env = {name: _env_value(os.environ[f"MLHARBOR_VAR_{name}"]) for name in bundle.variables
                    if f"MLHARBOR_VAR_{name}" in os.environ}
        user = ws.actor.principal if ws.actor is not None else "user"
        return cls(ws, resolve(bundle, target, {**from_env, **(variables or {})}, user))

    # --- state ---------------------------------------------------------------------------------

    def _state(self) -> dict[str, dict[str, str]]:
        with self.ws.services.store.transaction() as tx:
            raw = tx.kv.get(state_key(self.bundle.name, self.bundle.target))
        return dict(json.loads(raw)["resources"]) if raw else {}

    def _save(self, resources: dict[str, dict[str, str]]) -> None:
        key = state_key(self.bundle.name, self.bundle.target)
        with self.ws.services.store.transaction() as tx:
            if resources:
                tx.kv.set(key, json.dumps({"resources": resources, "updated_at": utcnow().isoformat(),
                                           "updated_by": self._actor.principal}, sort_keys=True))
            else:
                tx.kv.delete(key)

    # --- what exists now -----------------------------------------------------------------------

    def _live(self, kind: str, name: str) -> dict[str, Any] | None:
        """The resource as deployed now, in the shape of the bundle's definition (None: absent)."""
        if kind == "jobs":
            try:
                return self.ws.jobs.get(name).to_dict()
            except NotFound:
                return None
        if kind == "experiments":
            tags = self.ws.tracking.experiment_tags(name)  # type: ignore[union-attr]
            return None if tags is None else {"name": name, "tags": tags}
        try:
            model = self.ws.models.get_model(name)
        except NotFound:
            return None
        return {"name": name, "description": model.description, "tags": dict(model.tags),
                "checks": dict(model.checks) or None}

    def _expected(self, kind: str, definition: dict[str, Any]) -> dict[str, Any]:
        """What ``_live`` shows once ``definition`` is deployed."""
        if kind == "jobs":
            job = Job.from_dict(definition)
            run_as = job.run_as or (None if self._actor.is_local_admin else self._actor.principal)
            return {**job.to_dict(), "run_as": run_as, "target": self.ws.settings.target}  # type: ignore[union-attr]
        return definition

    @staticmethod
    def _matches(kind: str, live: dict[str, Any], expected: dict[str, Any]) -> bool:
        if kind == "experiments":  # MLflow adds its own tags; ours must be there
            return all(live["tags"].get(k) == v for k, v in expected["tags"].items())
        return json.dumps(live, sort_keys=True, default=str) == json.dumps(expected, sort_keys=True, default=str)

    # --- plan, deploy, destroy -----------------------------------------------------------------

    def _change(self, resource: str, before: dict[str, str] | None) -> Change:
        """What deploying one wanted resource would do (``before``: its deployment record)."""
        kind, name, definition = self.bundle.resources()[resource]
        key = resource.split(".", 1)[1]
        live = self._live(kind, name)
        if live is None:
            detail = "was deleted outside the bundle" if before and before["name"] == name else ""
            return Change("create", kind, key, name, detail)
        if not self._matches(kind, live, self._expected(kind, definition)):
            detail = "changed outside the bundle" if before and before["digest"] == digest(definition) else ""
            return Change("update", kind, key, name, detail)
        return Change("unchanged", kind, key, name)

    def plan(self) -> list[Change]:
        """What ``deploy`` would do, resource by resource (unchanged ones included)."""
        return self._plan(self._state())

    def _plan(self, state: dict[str, dict[str, str]]) -> list[Change]:
        wanted = self.bundle.resources()
        changes = [self._change(resource, state.get(resource))
                   for resource in sorted(wanted, key=lambda r: (_ORDER[wanted[r][0]], r))]
        for resource, before in sorted(state.items(), key=lambda i: -_ORDER[i[1]["kind"]]):
            renamed = resource in wanted and wanted[resource][1] != before["name"]
            if resource not in wanted or renamed:
                changes.append(Change("delete", before["kind"], resource.split(".", 1)[1], before["name"],
                                      "renamed" if renamed else "no longer in the bundle"))
        return changes

    def deploy(self) -> list[Change]:
        """Apply the plan; returns it. Deploying an unchanged bundle changes nothing."""
        state = self._state()
        changes = self._plan(state)
        wanted = self.bundle.resources()
        for change in changes:
            if change.action == "delete":
                self._delete(change)
                if state.get(change.resource, {}).get("name") == change.name:
                    del state[change.resource]
                    self._save(state)
        for change in changes:
            kind, name, definition = wanted.get(change.resource, (change.kind, change.name, {}))
            if change.action in ("create", "update"):
                self._apply(kind, name, definition)
            if change.action != "delete":
                entry = {"kind": kind, "name": name, "digest": digest(definition)}
                if state.get(change.resource) != entry:
                    state[change.resource] = entry
                    self._save(state)
        return changes

    def _apply(self, kind: str, name: str, definition: dict[str, Any]) -> None:
        if kind == "jobs":
            self.ws.jobs.deploy(Job.from_dict(definition))
        elif kind == "experiments":
            self.ws.tracking.create_experiment(name, definition["tags"])  # type: ignore[union-attr]
        else:
            self.ws.models.create_model(name, definition["description"], definition["tags"])  # type: ignore[union-attr]
            self.ws.models.update_model(name, description=definition["description"], tags=definition["tags"],
                                        checks=definition["checks"] or {})

    def _delete(self, change: Change) -> str:
        """Remove one deployed resource; returns what happened."""
        try:
            if change.kind == "jobs":
                self.ws.jobs.delete(change.name)
            elif change.kind == "experiments":
                self.ws.tracking.delete_experiment(change.name)  # type: ignore[union-attr]
            else:
                self.ws.models.delete_model(change.name)  # type: ignore[union-attr]
        except NotFound:
            return "already gone"
        except Conflict as exc:
            return f"kept: {exc.message}"
        return "deleted"

    def destroy(self) -> list[Change]:
        """Remove every resource this bundle deployed to the target (models with versions are kept);
        returns what was done (``detail`` says deleted, already gone or kept and why)."""
        state = self._state()
        done: list[Change] = []
        for resource, before in sorted(state.items(), key=lambda i: -_ORDER[i[1]["kind"]]):
            change = Change("delete", before["kind"], resource.split(".", 1)[1], before["name"])
            outcome = self._delete(change)
            done.append(Change("delete", change.kind, change.key, change.name, outcome))
            del state[resource]
            self._save(state)
        return done

    # --- runs ----------------------------------------------------------------------------------

    def job_name(self, key: str) -> str:
        if key not in self.bundle.jobs:
            raise InvalidArgument(f"bundle {self.bundle.name} has no job {key!r}; it has "
                                  f"{', '.join(self.bundle.jobs) or 'none'}")
        return self.bundle.jobs[key].name

    def run(self, key: str, parameters: dict[str, Any] | None = None, executor: str = "subprocess",
            force: bool = False) -> JobRunInfo:
        """Run the bundle job ``key`` as deployed; Conflict when it is not deployed as defined."""
        name = self.job_name(key)
        change = self._change(f"jobs.{key}", None)
        if change.action != "unchanged":
            raise Conflict(f"job {key} ({name}) is not deployed as the bundle defines it ({change.action} "
                           f"pending): run mlharbor bundle deploy --target {self.bundle.target} first")
        return self.ws.jobs.run(name, parameters, executor=executor, trigger=f"bundle:{self.bundle.name}", force=force)


def format_plan(changes: list[Change]) -> list[str]:
    """One line per change, ``+``/``~``/``-``/`` `` marked, for the CLI."""
    marks = {"create": "+", "update": "~", "delete": "-", "unchanged": " "}
    width = max((len(c.resource) for c in changes), default=0)
    return [f"{marks[c.action]} {c.action:<9} {c.resource:<{width}}  {c.name}" + (f"  ({c.detail})" if c.detail else "")
            for c in changes]
