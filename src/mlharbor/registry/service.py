"""The registry workflow: versions, stages, transition requests, approvals, rollback.

Every version has a stage (None, Staging, Production, Archived) with a full history. Moving a
version happens through a **transition request** that someone allowed approves: requesting needs
``request`` in the model's environment; approving a move to Production needs ``approve`` (ML
engineers, admins), other moves ``write``; nobody approves their own request unless the workspace
policy says so. Promotion archives the previous Production version in the same transaction, and
the database refuses a second Production version outright, so concurrent approvals cannot produce
two. MLflow's aliases follow the stages — ``champion`` is the Production version, ``challenger``
the newest Staging one — so ``models:/name@champion`` always loads what is in production. Every
step is audited and reported as an outbox event.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.catalog.service import catalog_environment
from mlharbor.core.clock import utcnow
from mlharbor.core.entities import (
    LineageNode,
    ModelComment,
    ModelStage,
    ModelVersionInfo,
    RegisteredModelInfo,
    RequestStatus,
    StageChange,
    TransitionRequest,
)
from mlharbor.core.ids import new_id
from mlharbor.core.names import parse_name
from mlharbor.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from mlharbor.lineage.service import LineageService, table_node
from mlharbor.registry import events

if TYPE_CHECKING:
    from mlharbor.catalog.service import CatalogContext
    from mlharbor.core.actors import Actor
    from mlharbor.meta import UnitOfWork
    from mlharbor.tracking.mlflow_adapter import MlflowAdapter

CHAMPION = "champion"
CHALLENGER = "challenger"
REGISTERED_FROM = "registered_from"
MAX_COMMENT = 10_000


def model_node(name: str, version: int | None = None) -> LineageNode:
    return LineageNode("model", name, None if version is None else str(version))


def parse_stage(stage: ModelStage | str) -> ModelStage:
    for member in ModelStage:
        if str(stage).lower() == member.value.lower():
            return member
    raise InvalidArgument(f"invalid stage {stage!r}: use one of {', '.join(s.value for s in ModelStage)}")


def _comment(text: str) -> str:
    if not isinstance(text, str) or len(text) > MAX_COMMENT:
        raise InvalidArgument(f"a comment is text of at most {MAX_COMMENT} characters")
    return text


class ModelRegistry:
    """Registry operations acting as one principal; MLflow holds versions and aliases, the metadata
    store holds stages, requests, history, checks and events."""

    def __init__(self, ctx: CatalogContext, actor: Actor, engine: MlflowAdapter) -> None:
        self._ctx = ctx
        self._actor = actor
        self._engine = engine

    # --- checks --------------------------------------------------------------------------------

    def _authorize(self, name: str, permission: Permission, action: str, resource: str | None = None) -> str:
        obj = parse_name(name, "model name")
        env = catalog_environment(self._ctx.settings, obj)
        self._ctx.auth.authorize(self._actor, permission, env, action, resource or f"model:{obj}")
        return str(obj)

    def _deny(self, action: str, resource: str, reason: str) -> PermissionDenied:
        from mlharbor.auth.audit import record_denied

        record_denied(self._ctx.store, self._actor, action, resource, reason)
        return PermissionDenied(reason)

    # --- models and versions -------------------------------------------------------------------

    def register_version(self, name: str, source: str, run_id: str | None, manifest: dict[str, str],
                         flavor: str, feature_spec: dict[str, Any] | None = None, description: str = "",
                         tags: dict[str, str] | None = None, trained_on: dict[str, int] | None = None,
                         ) -> ModelVersionInfo:
        """Register the model folder at ``source`` as the next version of ``name`` (stage None).

        ``manifest`` (file → SHA-256) is what loading will verify; ``trained_on`` (table → version)
        and ``run_id`` become lineage edges into the version.
        """
        full = self._authorize(name, Permission.WRITE, "model.register")
        now = utcnow()
        tags = {str(k): str(v) for k, v in (tags or {}).items()}
        with self._ctx.store.transaction() as tx:
            if tx.registry.find_model(full) is None:
                tx.registry.add_model(RegisteredModelInfo(full, self._actor.principal, "", {}, self._actor.principal,
                                                          now, now))
        self._engine.ensure_registered_model(full)
        version = self._engine.create_model_version(full, source, run_id, description, tags)
        info = ModelVersionInfo(
            name=full, version=version, stage=ModelStage.NONE, source=source, run_id=run_id,
            description=description, manifest=dict(manifest), feature_spec=feature_spec, flavor=flavor,
            created_by=self._actor.principal, created_at=now, updated_at=now, tags=tags,
        )
        with self._ctx.store.transaction() as tx:
            stored = tx.registry.add_version(info)
            sources = [table_node(t, v) for t, v in (trained_on or {}).items()]
            if run_id:
                sources.append(LineageNode("run", run_id))
            LineageService.record(tx, self._actor, sources, model_node(full, version), REGISTERED_FROM)
            record(tx, self._actor, "model.register", events.version_resource(full, version),
                   {"source": source, "run_id": run_id})
            events.emit(tx, self._actor, events.VERSION_REGISTERED, events.version_resource(full, version),
                        {"name": full, "version": version, "run_id": run_id, "source": source})
        return stored

    def create_model(self, name: str, description: str = "", tags: dict[str, str] | None = None) -> bool:
        """Register the name ``name`` before any version exists (idempotent); True when it was created."""
        full = self._authorize(name, Permission.WRITE, "model.create")
        now = utcnow()
        with self._ctx.store.transaction() as tx:
            if tx.registry.find_model(full) is not None:
                return False
            tx.registry.add_model(RegisteredModelInfo(full, self._actor.principal, _comment(description),
                                                      {str(k): str(v) for k, v in (tags or {}).items()},
                                                      self._actor.principal, now, now))
            record(tx, self._actor, "model.create", f"model:{full}")
        self._engine.ensure_registered_model(full, description)
        return True

    def delete_model(self, name: str) -> None:
        """Remove a registered model that has no versions; Conflict when it has some (they are kept)."""
        full = self._authorize(name, Permission.WRITE, "model.delete")
        with self._ctx.store.transaction() as tx:
            tx.registry.delete_model(full)
            record(tx, self._actor, "model.delete", f"model:{full}")
        self._engine.delete_registered_model(full)

    def get_model(self, name: str) -> RegisteredModelInfo:
        full = self._authorize(name, Permission.READ, "model.read")
        with self._ctx.store.transaction() as tx:
            found = tx.registry.find_model(full)
        if found is None:
            raise NotFound(f"registered model {full} does not exist")
        return found

    def list_models(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[RegisteredModelInfo]:
        """Registered models you may read, by name."""
        with self._ctx.store.transaction() as tx:
            models = tx.registry.list_models(catalog, schema)
        readable = []
        for m in models:
            try:
                env = catalog_environment(self._ctx.settings, parse_name(m.name))
            except InvalidArgument:
                continue
            if Permission.READ in self._ctx.auth.permissions(self._actor, env):
                readable.append(m)
        return readable

    def update_model(self, name: str, description: str | None = None, tags: dict[str, str] | None = None,
                     checks: dict[str, Any] | None = None) -> RegisteredModelInfo:
        """Change a model's description, tags or compliance-check configuration."""
        full = self._authorize(name, Permission.WRITE, "model.update")
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = _comment(description)
        if tags is not None:
            changes["tags"] = {str(k): str(v) for k, v in tags.items()}
        if checks is not None:
            from mlharbor.registry.checks import validate_config

            changes["checks"] = validate_config(checks)
        with self._ctx.store.transaction() as tx:
            updated = tx.registry.update_model(full, **changes)
            record(tx, self._actor, "model.update", f"model:{full}", {"fields": sorted(changes)})
        return updated

    def versions(self, name: str, stage: ModelStage | str | None = None) -> builtins.list[ModelVersionInfo]:
        full = self._authorize(name, Permission.READ, "model.read")
        with self._ctx.store.transaction() as tx:
            if tx.registry.find_model(full) is None:
                raise NotFound(f"registered model {full} does not exist")
            return tx.registry.versions(full, None if stage is None else parse_stage(stage))

    def get_version(self, name: str, version: int | str) -> ModelVersionInfo:
        """A version by number, or by alias (``champion``, ``challenger``) or stage name."""
        full = self._authorize(name, Permission.READ, "model.read")
        with self._ctx.store.transaction() as tx:
            return self._resolve(tx, full, version)

    def _resolve(self, tx: UnitOfWork, full: str, version: int | str) -> ModelVersionInfo:
        if isinstance(version, int) or (isinstance(version, str) and version.isdigit()):
            return tx.registry.get_version(full, int(version))
        ref = str(version).lower()
        stage = {CHAMPION: ModelStage.PRODUCTION, CHALLENGER: ModelStage.STAGING}.get(ref)
        if stage is None:
            stage = parse_stage(ref)
        found = tx.registry.versions(full, stage)
        if not found:
            raise NotFound(f"model {full} has no {ref} version")
        return found[-1]

    def update_version(self, name: str, version: int, **fields: Any) -> ModelVersionInfo:
        """Set a version's description, tags, evaluation or checks report (WRITE)."""
        full = self._authorize(name, Permission.WRITE, "model.update")
        unknown = set(fields) - {"description", "tags", "evaluation", "checks"}
        if unknown:
            raise InvalidArgument(f"cannot update {sorted(unknown)} of a model version")
        with self._ctx.store.transaction() as tx:
            updated = tx.registry.update_version(full, version, **fields)
            record(tx, self._actor, "model.update", events.version_resource(full, version), {"fields": sorted(fields)})
        return updated

    def history(self, name: str, version: int | None = None) -> builtins.list[StageChange]:
        full = self._authorize(name, Permission.READ, "model.read")
        with self._ctx.store.transaction() as tx:
            return tx.registry.history(full, version)

    # --- transition requests -------------------------------------------------------------------

    def request_transition(self, name: str, version: int, stage: ModelStage | str,
                           comment: str = "") -> TransitionRequest:
        """Ask for ``version`` to move to ``stage``; it waits for an approver."""
        full = self._authorize(name, Permission.REQUEST, "model.request_transition")
        to_stage = parse_stage(stage)
        now = utcnow()
        with self._ctx.store.transaction() as tx:
            current = tx.registry.get_version(full, int(version))
            if current.stage is to_stage:
                raise Conflict(f"version {version} of {full} is already in {to_stage.value}")
            request = tx.registry.add_request(TransitionRequest(
                id=new_id(), name=full, version=int(version), to_stage=to_stage, status=RequestStatus.PENDING,
                requested_by=self._actor.principal, requested_at=now, comment=_comment(comment)))
            resource = events.version_resource(full, int(version))
            record(tx, self._actor, "model.request_transition", resource,
                   {"request": request.id, "to_stage": to_stage.value})
            events.emit(tx, self._actor, events.TRANSITION_REQUESTED, resource,
                        {"request_id": request.id, "name": full, "version": int(version), "to_stage": to_stage.value,
                         "from_stage": current.stage.value, "comment": comment})
        return request

    def requests(self, name: str | None = None, version: int | None = None,
                 status: RequestStatus | str | None = RequestStatus.PENDING) -> builtins.list[TransitionRequest]:
        """Transition requests (default: pending ones) of one model, or of every model you may read."""
        wanted = None if status is None else RequestStatus(status)
        if name is not None:
            full = self._authorize(name, Permission.READ, "model.read")
            with self._ctx.store.transaction() as tx:
                return tx.registry.requests(full, version, wanted)
        readable = {m.name for m in self.list_models()}
        with self._ctx.store.transaction() as tx:
            return [r for r in tx.registry.requests(None, version, wanted) if r.name in readable]

    def approve(self, request_id: str, comment: str = "", override_reason: str | None = None) -> ModelVersionInfo:
        """Approve a pending request and carry it out (the version moves; a promoted version's
        predecessor in Production is archived).

        Moves to Staging or Production are blocked while the version's compliance checks (run when
        the request was made) fail or have not run, unless an admin (``manage`` in the environment)
        overrides them with ``override_reason``, which is audited.
        """
        request = self._request(request_id)
        needed = Permission.APPROVE if request.to_stage is ModelStage.PRODUCTION else Permission.WRITE
        resource = events.version_resource(request.name, request.version)
        env = self._authorize_env(request.name)
        self._authorize(request.name, needed, "model.approve_transition", resource)
        if request.requested_by == self._actor.principal and not self._ctx.settings.policy.allow_self_approval:
            raise self._deny("model.approve_transition", resource,
                             f"{self._actor.principal} requested this transition and may not approve it "
                             "(the workspace policy forbids self-approval)")
        failing = self._failing_checks(request) if request.to_stage in (ModelStage.STAGING,
                                                                         ModelStage.PRODUCTION) else []
        if failing and not override_reason:
            raise Conflict(f"{request.name} v{request.version} cannot move to {request.to_stage.value}: "
                           f"compliance checks failed ({'; '.join(failing)}); fix and request again, or an "
                           "admin approves with an override reason")
        if failing:
            self._ctx.auth.authorize(self._actor, Permission.MANAGE, env, "model.checks_override", resource)
        with self._ctx.store.transaction() as tx:
            tx.registry.lock_model(request.name)
            tx.registry.decide_request(request.id, RequestStatus.APPROVED, self._actor.principal, _comment(comment))
            record(tx, self._actor, "model.approve_transition", resource,
                   {"request": request.id, "to_stage": request.to_stage.value})
            if failing:
                record(tx, self._actor, "model.checks_override", resource,
                       {"request": request.id, "failing": failing, "reason": _comment(override_reason or "")})
            events.emit(tx, self._actor, events.TRANSITION_APPROVED, resource,
                        {"request_id": request.id, "name": request.name, "version": request.version,
                         "to_stage": request.to_stage.value, "comment": comment})
            moved = self._move(tx, request.name, request.version, request.to_stage, comment or request.comment,
                               request.id)
        self.sync_aliases(request.name)
        return moved

    def _authorize_env(self, name: str) -> Any:
        return catalog_environment(self._ctx.settings, parse_name(name, "model name"))

    def _failing_checks(self, request: TransitionRequest) -> builtins.list[str]:
        """Names and details of the failing checks of the request's version ("not run" if none ran)."""
        with self._ctx.store.transaction() as tx:
            report = tx.registry.get_version(request.name, request.version).checks
        if not report:
            return ["checks have not run for this version"]
        return [f"{r['name']}: {r.get('detail', '')}".rstrip(": ") for r in report.get("results", [])
                if not r.get("passed")]

    def reject(self, request_id: str, comment: str = "") -> TransitionRequest:
        """Close a pending request without moving the version (same permission as approving)."""
        request = self._request(request_id)
        needed = Permission.APPROVE if request.to_stage is ModelStage.PRODUCTION else Permission.WRITE
        resource = events.version_resource(request.name, request.version)
        self._authorize(request.name, needed, "model.reject_transition", resource)
        with self._ctx.store.transaction() as tx:
            closed = tx.registry.decide_request(request.id, RequestStatus.REJECTED, self._actor.principal,
                                                _comment(comment))
            record(tx, self._actor, "model.reject_transition", resource, {"request": request.id})
            events.emit(tx, self._actor, events.TRANSITION_REJECTED, resource,
                        {"request_id": request.id, "name": request.name, "version": request.version,
                         "to_stage": request.to_stage.value, "comment": comment})
        return closed

    def cancel(self, request_id: str, comment: str = "") -> TransitionRequest:
        """Withdraw a pending request: its requester, or anyone who could approve it."""
        request = self._request(request_id)
        resource = events.version_resource(request.name, request.version)
        if request.requested_by != self._actor.principal:
            needed = Permission.APPROVE if request.to_stage is ModelStage.PRODUCTION else Permission.WRITE
            self._authorize(request.name, needed, "model.cancel_transition", resource)
        with self._ctx.store.transaction() as tx:
            closed = tx.registry.decide_request(request.id, RequestStatus.CANCELLED, self._actor.principal,
                                                _comment(comment))
            record(tx, self._actor, "model.cancel_transition", resource, {"request": request.id})
            events.emit(tx, self._actor, events.TRANSITION_CANCELLED, resource,
                        {"request_id": request.id, "name": request.name, "version": request.version})
        return closed

    def _request(self, request_id: str) -> TransitionRequest:
        if not isinstance(request_id, str) or not request_id:
            raise InvalidArgument("a transition request id is required")
        with self._ctx.store.transaction() as tx:
            request = tx.registry.get_request(request_id)
        self._authorize(request.name, Permission.READ, "model.read")
        if request.status is not RequestStatus.PENDING:
            raise Conflict(f"transition request {request_id} is already {request.status.value}")
        return request

    def rollback(self, name: str, comment: str = "") -> ModelVersionInfo:
        """Return Production to the version that held it before the current one (which is archived)."""
        full = self._authorize(name, Permission.APPROVE, "model.rollback")
        with self._ctx.store.transaction() as tx:
            tx.registry.lock_model(full)
            current = tx.registry.versions(full, ModelStage.PRODUCTION)
            previous = [c.version for c in tx.registry.history(full)
                        if c.to_stage is ModelStage.PRODUCTION and (not current or c.version != current[0].version)]
            if not previous:
                raise Conflict(f"model {full} has no earlier Production version to roll back to")
            target = previous[-1]
            moved = self._move(tx, full, target, ModelStage.PRODUCTION, comment or "rollback", None)
            record(tx, self._actor, "model.rollback", events.version_resource(full, target),
                   {"from_version": current[0].version if current else None})
        self.sync_aliases(full)
        return moved

    def _move(self, tx: UnitOfWork, full: str, version: int, to_stage: ModelStage, comment: str,
              request_id: str | None) -> ModelVersionInfo:
        """Move a version inside ``tx`` (the model is locked), archiving the Production predecessor."""
        current = tx.registry.get_version(full, version)
        if to_stage is ModelStage.PRODUCTION:
            for old in tx.registry.versions(full, ModelStage.PRODUCTION):
                if old.version != version:
                    self._set_stage(tx, old, ModelStage.ARCHIVED, f"replaced by version {version}", request_id)
        return self._set_stage(tx, current, to_stage, comment, request_id)

    def _set_stage(self, tx: UnitOfWork, current: ModelVersionInfo, to_stage: ModelStage, comment: str,
                   request_id: str | None) -> ModelVersionInfo:
        moved = tx.registry.set_stage(current.name, current.version, to_stage)
        tx.registry.add_change(StageChange(current.name, current.version, current.stage, to_stage,
                                           self._actor.principal, utcnow(), comment, request_id))
        resource = events.version_resource(current.name, current.version)
        record(tx, self._actor, "model.stage_changed", resource,
               {"from_stage": current.stage.value, "to_stage": to_stage.value, "request": request_id})
        events.emit(tx, self._actor, events.STAGE_CHANGED, resource,
                    {"name": current.name, "version": current.version, "from_stage": current.stage.value,
                     "to_stage": to_stage.value, "request_id": request_id})
        return moved

    def sync_aliases(self, name: str) -> dict[str, int | None]:
        """Point MLflow's ``champion`` and ``challenger`` aliases at the Production and newest Staging
        versions (or remove them). Idempotent; emits ``model_alias.changed`` for each change.

        The model stays locked while MLflow is updated, so two processes syncing after concurrent
        approvals cannot leave an older state behind: each one writes what is committed at that moment.
        """
        full = str(parse_name(name, "model name"))
        with self._ctx.store.transaction() as tx:
            tx.registry.lock_model(full)
            production = tx.registry.versions(full, ModelStage.PRODUCTION)
            staging = tx.registry.versions(full, ModelStage.STAGING)
            wanted: dict[str, int | None] = {CHAMPION: production[-1].version if production else None,
                                             CHALLENGER: staging[-1].version if staging else None}
            current = self._engine.aliases(full)
            changed = {alias: v for alias, v in wanted.items() if current.get(alias) != v}
            for alias, version in changed.items():
                self._engine.set_alias(full, alias, version)
                events.emit(tx, self._actor, events.ALIAS_CHANGED, f"model:{full}",
                            {"name": full, "alias": alias, "version": version, "previous": current.get(alias)})
        return wanted

    # --- comments ------------------------------------------------------------------------------

    def comment(self, name: str, version: int, text: str) -> ModelComment:
        full = self._authorize(name, Permission.REQUEST, "model.comment")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument("a comment needs text")
        with self._ctx.store.transaction() as tx:
            tx.registry.get_version(full, version)
            added = tx.registry.add_comment(full, version, self._actor.principal, _comment(text))
            events.emit(tx, self._actor, events.COMMENT_ADDED, events.version_resource(full, version),
                        {"name": full, "version": version, "comment_id": added.id})
        return added

    def comments(self, name: str, version: int) -> builtins.list[ModelComment]:
        full = self._authorize(name, Permission.READ, "model.read")
        with self._ctx.store.transaction() as tx:
            return tx.registry.comments(full, version)
