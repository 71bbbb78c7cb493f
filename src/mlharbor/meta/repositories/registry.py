"""Registered models, their versions' stages and history, transition requests and comments.

The repository stores what the registry service decides; the rules (who may move what where)
live in :mod:`mlharbor.registry`. Two rules are also held by the database so that no race can
break them: one Production version per model, one pending request per version and stage.
"""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlharbor.core.clock import as_utc, utcnow
from mlharbor.core.entities import (
    ModelComment,
    ModelStage,
    ModelVersionInfo,
    RegisteredModelInfo,
    RequestStatus,
    StageChange,
    TransitionRequest,
)
from mlharbor.core.names import check_identifier, parse_name
from mlharbor.errors import Conflict, NotFound
from mlharbor.meta.models import (
    ModelCommentRow,
    ModelVersionRow,
    RegisteredModelRow,
    StageChangeRow,
    TransitionRequestRow,
)
from mlharbor.meta.repositories._common import add_unique


def _model(row: RegisteredModelRow) -> RegisteredModelInfo:
    return RegisteredModelInfo(
        name=row.name, owner=row.owner, description=row.description, tags=dict(row.tags),
        created_by=row.created_by, created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
        checks=dict(row.checks),
    )


def _version(row: ModelVersionRow) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=row.name, version=row.version, stage=ModelStage(row.stage), source=row.source, run_id=row.run_id,
        description=row.description, manifest=dict(row.manifest),
        feature_spec=None if row.feature_spec is None else dict(row.feature_spec), flavor=row.flavor,
        created_by=row.created_by, created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
        tags=dict(row.tags), evaluation=None if row.evaluation is None else dict(row.evaluation),
        checks=None if row.checks is None else dict(row.checks),
    )


def _request(row: TransitionRequestRow) -> TransitionRequest:
    return TransitionRequest(
        id=row.id, name=row.name, version=row.version, to_stage=ModelStage(row.to_stage),
        status=RequestStatus(row.status), requested_by=row.requested_by, requested_at=as_utc(row.requested_at),
        comment=row.comment, decided_by=row.decided_by,
        decided_at=None if row.decided_at is None else as_utc(row.decided_at), decision_comment=row.decision_comment,
    )


def _model_name(name: str) -> str:
    return str(parse_name(name, "model name"))


class RegistryRepository:
    """Registry records keyed by full model name (``catalog.schema.model``, lower case) and version."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # --- registered models ---------------------------------------------------------------------

    def add_model(self, info: RegisteredModelInfo) -> RegisteredModelInfo:
        """Register a model name; AlreadyExists if it is taken."""
        name = parse_name(info.name, "model name")
        row = RegisteredModelRow(
            name=str(name), catalog_name=name.catalog, schema_name=name.schema, owner=info.owner,
            description=info.description, tags=dict(info.tags), checks=dict(info.checks),
            created_by=info.created_by, created_at=info.created_at, updated_at=info.updated_at,
        )
        add_unique(self._session, row, f"registered model {name}")
        return _model(row)

    def _model_row(self, name: str, lock: bool = False) -> RegisteredModelRow:
        stmt = select(RegisteredModelRow).where(RegisteredModelRow.name == _model_name(name))
        row = self._session.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
        if row is None:
            raise NotFound(f"registered model {_model_name(name)} does not exist")
        return row

    def find_model(self, name: str) -> RegisteredModelInfo | None:
        row = self._session.get(RegisteredModelRow, _model_name(name))
        return None if row is None else _model(row)

    def delete_model(self, name: str) -> None:
        """Remove a registered model that has no versions (Conflict otherwise)."""
        row = self._model_row(name, lock=True)
        if self.versions(row.name):
            raise Conflict(f"registered model {row.name} has versions; it is kept")
        self._session.delete(row)
        self._session.flush()

    def lock_model(self, name: str) -> RegisteredModelInfo:
        """The model, locked until the transaction ends (``SELECT … FOR UPDATE`` on PostgreSQL;
        SQLite serialises writers anyway): stage changes of one model happen one at a time."""
        return _model(self._model_row(name, lock=True))

    def list_models(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[RegisteredModelInfo]:
        """Registered models sorted by name, optionally in one catalog and schema."""
        stmt = select(RegisteredModelRow)
        if catalog is not None:
            stmt = stmt.where(RegisteredModelRow.catalog_name == check_identifier(catalog, "catalog name"))
        if schema is not None:
            stmt = stmt.where(RegisteredModelRow.schema_name == check_identifier(schema, "schema name"))
        return [_model(r) for r in self._session.scalars(stmt.order_by(RegisteredModelRow.name))]

    def update_model(self, name: str, **changes: Any) -> RegisteredModelInfo:
        """Replace the given fields (description, tags, owner, checks)."""
        row = self._model_row(name)
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        self._session.flush()
        return _model(row)

    # --- versions ------------------------------------------------------------------------------

    def add_version(self, info: ModelVersionInfo) -> ModelVersionInfo:
        """Record a version (its number comes from MLflow); AlreadyExists if it is recorded."""
        name = _model_name(info.name)
        self._model_row(name)
        row = ModelVersionRow(
            name=name, version=info.version, stage=info.stage.value, source=info.source, run_id=info.run_id,
            description=info.description, manifest=dict(info.manifest), feature_spec=info.feature_spec,
            flavor=info.flavor, tags=dict(info.tags), evaluation=info.evaluation, checks=info.checks,
            created_by=info.created_by, created_at=info.created_at, updated_at=info.updated_at,
        )
        add_unique(self._session, row, f"version {info.version} of model {name}")
        return _version(row)

    def _version_row(self, name: str, version: int) -> ModelVersionRow:
        stmt = select(ModelVersionRow).where(ModelVersionRow.name == _model_name(name),
                                             ModelVersionRow.version == version)
        row = self._session.scalars(stmt).one_or_none()
        if row is None:
            raise NotFound(f"version {version} of model {_model_name(name)} does not exist")
        return row

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        """A version; NotFound if it is not recorded."""
        return _version(self._version_row(name, version))

    def versions(self, name: str, stage: ModelStage | None = None) -> builtins.list[ModelVersionInfo]:
        """Versions of ``name`` (optionally in one stage), oldest first."""
        stmt = select(ModelVersionRow).where(ModelVersionRow.name == _model_name(name))
        if stage is not None:
            stmt = stmt.where(ModelVersionRow.stage == stage.value)
        return [_version(r) for r in self._session.scalars(stmt.order_by(ModelVersionRow.version))]

    def latest_version(self, name: str) -> int:
        """The highest recorded version number of ``name`` (0 when there is none)."""
        stmt = select(func.max(ModelVersionRow.version)).where(ModelVersionRow.name == _model_name(name))
        return int(self._session.scalar(stmt) or 0)

    def set_stage(self, name: str, version: int, stage: ModelStage) -> ModelVersionInfo:
        """Move a version to ``stage``. Conflict if that would make a second Production version
        (the database's unique index decides, so concurrent promotions cannot both win)."""
        row = self._version_row(name, version)
        row.stage = stage.value
        row.updated_at = utcnow()
        try:
            with self._session.begin_nested():
                self._session.flush()
        except IntegrityError as exc:
            raise Conflict(f"model {row.name} already has a Production version; archive it first") from exc
        return _version(row)

    def update_version(self, name: str, version: int, **changes: Any) -> ModelVersionInfo:
        """Replace the given fields (description, tags, evaluation, checks)."""
        row = self._version_row(name, version)
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        self._session.flush()
        return _version(row)

    # --- stage history -------------------------------------------------------------------------

    def add_change(self, change: StageChange) -> None:
        self._session.add(StageChangeRow(
            name=_model_name(change.name), version=change.version, from_stage=change.from_stage.value,
            to_stage=change.to_stage.value, actor=change.actor, time=change.time, comment=change.comment,
            request_id=change.request_id,
        ))
        self._session.flush()

    def history(self, name: str, version: int | None = None) -> builtins.list[StageChange]:
        """Stage changes of a model (or one version), oldest first."""
        stmt = select(StageChangeRow).where(StageChangeRow.name == _model_name(name))
        if version is not None:
            stmt = stmt.where(StageChangeRow.version == version)
        return [
            StageChange(name=r.name, version=r.version, from_stage=ModelStage(r.from_stage),
                        to_stage=ModelStage(r.to_stage), actor=r.actor, time=as_utc(r.time), comment=r.comment,
                        request_id=r.request_id)
            for r in self._session.scalars(stmt.order_by(StageChangeRow.id))
        ]

    # --- transition requests -------------------------------------------------------------------

    def add_request(self, request: TransitionRequest) -> TransitionRequest:
        """Store a pending request; AlreadyExists if the version has one pending for that stage."""
        row = TransitionRequestRow(
            id=request.id, name=_model_name(request.name), version=request.version,
            to_stage=request.to_stage.value, status=request.status.value, requested_by=request.requested_by,
            requested_at=request.requested_at, comment=request.comment, decided_by=None, decided_at=None,
            decision_comment="",
        )
        add_unique(self._session, row, f"a pending request to move version {request.version} of "
                                       f"{row.name} to {request.to_stage.value}")
        return _request(row)

    def get_request(self, request_id: str, lock: bool = False) -> TransitionRequest:
        stmt = select(TransitionRequestRow).where(TransitionRequestRow.id == request_id)
        row = self._session.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
        if row is None:
            raise NotFound(f"transition request {request_id} does not exist")
        return _request(row)

    def requests(self, name: str | None = None, version: int | None = None,
                 status: RequestStatus | None = None) -> builtins.list[TransitionRequest]:
        """Requests, oldest first, filtered by model, version and status."""
        stmt = select(TransitionRequestRow)
        if name is not None:
            stmt = stmt.where(TransitionRequestRow.name == _model_name(name))
        if version is not None:
            stmt = stmt.where(TransitionRequestRow.version == version)
        if status is not None:
            stmt = stmt.where(TransitionRequestRow.status == status.value)
        stmt = stmt.order_by(TransitionRequestRow.requested_at, TransitionRequestRow.id)
        return [_request(r) for r in self._session.scalars(stmt)]

    def decide_request(self, request_id: str, status: RequestStatus, actor: str, comment: str) -> TransitionRequest:
        """Close a pending request; Conflict if it is no longer pending."""
        row = self._session.get(TransitionRequestRow, request_id)
        if row is None:
            raise NotFound(f"transition request {request_id} does not exist")
        if row.status != RequestStatus.PENDING.value:
            raise Conflict(f"transition request {request_id} is already {row.status}")
        row.status, row.decided_by, row.decided_at, row.decision_comment = status.value, actor, utcnow(), comment
        self._session.flush()
        return _request(row)

    # --- comments ------------------------------------------------------------------------------

    def add_comment(self, name: str, version: int, author: str, text: str) -> ModelComment:
        row = ModelCommentRow(name=_model_name(name), version=version, author=author, time=utcnow(), text=text)
        self._session.add(row)
        self._session.flush()
        return ModelComment(row.id, row.name, row.version, row.author, as_utc(row.time), row.text)

    def comments(self, name: str, version: int) -> builtins.list[ModelComment]:
        stmt = select(ModelCommentRow).where(ModelCommentRow.name == _model_name(name),
                                             ModelCommentRow.version == version)
        return [ModelComment(r.id, r.name, r.version, r.author, as_utc(r.time), r.text)
                for r in self._session.scalars(stmt.order_by(ModelCommentRow.id))]
