"""Model registry routes: models and versions, transition requests and approvals, rollback, history,
compliance checks, model cards, comments and webhooks.

Thin: each route calls one :class:`~mlharbor.registry.models.ModelStore` (or
:class:`~mlharbor.registry.webhooks.WebhookService`) method acting as the token's principal, so
permissions, audit and events are the ones of the local API. Model names are ``catalog.schema.model``
(dots are fine in a path segment). A version's manifest (file → SHA-256) can be large: only the
single-version GET returns it. Model artifacts travel through MLflow's own REST API (runs and the
artifact proxy), which the server serves too; ``POST /models/{name}/versions`` then registers a run's
logged model folder, hashed here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from mlharbor.api import deps
from mlharbor.api.schemas import ERROR_RESPONSES, INT64_MAX, Body
from mlharbor.core.entities import (
    EventDelivery,
    ModelComment,
    ModelVersionInfo,
    RegisteredModelInfo,
    StageChange,
    TransitionRequest,
    Webhook,
)
from mlharbor.errors import InvalidArgument
from mlharbor.registry.models import ModelStore
from mlharbor.registry.webhooks import WebhookService

router = APIRouter(prefix="/api/v1", tags=["models"], responses=ERROR_RESPONSES)

MAX_TEXT = 10_000
_NUMBER = re.compile(r"^[0-9]{1,19}$")
_WORD = re.compile(r"^[A-Za-z]{1,32}$")
MARKDOWN = "text/markdown; charset=utf-8"


def _models(request: Request) -> ModelStore:
    actor = deps.actor(request)
    return deps.services(request).models(actor)


def _webhooks(request: Request) -> WebhookService:
    actor = deps.actor(request)
    return WebhookService(deps.services(request).catalog, actor)


Models = Annotated[ModelStore, Depends(_models)]
Hooks = Annotated[WebhookService, Depends(_webhooks)]
VersionNumber = Annotated[int, Path(ge=1, le=INT64_MAX, description="a version number")]
VersionRef = Annotated[str, Path(max_length=32, description="a version number, an alias (champion, challenger) "
                                                            "or a stage (Staging, Production, ...)")]
RequestId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
HookId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


def _ref(ref: str) -> int | str:
    """A version reference from a path: an int for a number, a word (alias or stage) otherwise."""
    if _NUMBER.match(ref) and int(ref) <= INT64_MAX:
        return int(ref)
    if _WORD.match(ref):
        return ref
    raise InvalidArgument(f"invalid version {ref!r}: use a version number, champion, challenger or a stage name")


# --- bodies ----------------------------------------------------------------------------------


class ModelUpdate(Body):
    description: Text | None = None
    tags: dict[str, str] | None = None
    checks: dict[str, dict[str, Any]] | None = Field(
        default=None, description="compliance checks to run on transition requests: {check_name: {option: value}}")


class VersionIn(Body):
    """A model folder a run logged (packaged by mlharbor), to register as the next version."""

    run_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    artifact_path: str = Field(default="model", min_length=1, max_length=1000,
                               description="where the run logged the model folder")
    description: Text = ""
    tags: dict[str, str] | None = None
    flavor: str | None = Field(default=None, max_length=100, description="if given, must match the packaged model")
    feature_spec: dict[str, Any] | None = Field(default=None, description="if given, must match the packaged one")
    trained_on: dict[str, Annotated[int, Field(ge=0, le=INT64_MAX)]] | None = Field(
        default=None, description="table -> version the model was trained on (lineage)")


class VersionUpdate(Body):
    """What people write on a version; evaluation and checks reports are written by the platform."""

    description: Text | None = None
    tags: dict[str, str] | None = None


class CommentIn(Body):
    comment: Text = ""


class TransitionIn(Body):
    stage: str = Field(max_length=32, examples=["Production"], description="None, Staging, Production or Archived")
    comment: Text = ""


class ApproveIn(Body):
    comment: Text = ""
    override_reason: Text | None = Field(
        default=None, description="an admin's reason to approve although compliance checks fail (audited)")


class ChecksIn(Body):
    request_id: str | None = Field(default=None, max_length=64, description="the transition request it is for")


class CardIn(Body):
    intended_use: Text | None = None
    limitations: Text | None = None
    ethical_considerations: Text | None = None
    out_of_scope_use: Text | None = None


class ModelCommentIn(Body):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class WebhookIn(Body):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2048, examples=["https://hooks.example.com/mlharbor"])
    events: list[str] = Field(default_factory=list, max_length=50, description="event kinds; empty: all")
    model: str | None = Field(default=None, max_length=200, description="one model, or none for every model")
    secret: str | None = Field(default=None, min_length=16, max_length=256,
                               description="the signing secret (default: a random one)")


# --- responses -------------------------------------------------------------------------------


class ModelOut(BaseModel):
    name: str
    owner: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    checks: dict[str, Any]

    @classmethod
    def of(cls, m: RegisteredModelInfo) -> ModelOut:
        return cls(name=m.name, owner=m.owner, description=m.description, tags=m.tags, created_by=m.created_by,
                   created_at=m.created_at, updated_at=m.updated_at, checks=m.checks)


class VersionOut(BaseModel):
    name: str
    version: int
    stage: str
    source: str
    run_id: str | None
    description: str
    flavor: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    tags: dict[str, str]
    feature_spec: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    checks: dict[str, Any] | None
    manifest: dict[str, str] | None = Field(
        default=None, description="file -> SHA-256; only in GET /models/{name}/versions/{version}")

    @classmethod
    def of(cls, v: ModelVersionInfo, manifest: bool = False) -> VersionOut:
        return cls(name=v.name, version=v.version, stage=v.stage.value, source=v.source, run_id=v.run_id,
                   description=v.description, flavor=v.flavor, created_by=v.created_by, created_at=v.created_at,
                   updated_at=v.updated_at, tags=v.tags, feature_spec=v.feature_spec, evaluation=v.evaluation,
                   checks=v.checks, manifest=dict(v.manifest) if manifest else None)


class RequestOut(BaseModel):
    id: str
    name: str
    version: int
    to_stage: str
    status: str
    requested_by: str
    requested_at: datetime
    comment: str
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str

    @classmethod
    def of(cls, r: TransitionRequest) -> RequestOut:
        return cls(id=r.id, name=r.name, version=r.version, to_stage=r.to_stage.value, status=r.status.value,
                   requested_by=r.requested_by, requested_at=r.requested_at, comment=r.comment,
                   decided_by=r.decided_by, decided_at=r.decided_at, decision_comment=r.decision_comment)


class StageChangeOut(BaseModel):
    name: str
    version: int
    from_stage: str
    to_stage: str
    actor: str
    time: datetime
    comment: str
    request_id: str | None

    @classmethod
    def of(cls, c: StageChange) -> StageChangeOut:
        return cls(name=c.name, version=c.version, from_stage=c.from_stage.value, to_stage=c.to_stage.value,
                   actor=c.actor, time=c.time, comment=c.comment, request_id=c.request_id)


class CommentOut(BaseModel):
    id: int
    name: str
    version: int
    author: str
    time: datetime
    text: str

    @classmethod
    def of(cls, c: ModelComment) -> CommentOut:
        return cls(id=c.id, name=c.name, version=c.version, author=c.author, time=c.time, text=c.text)


class CheckResultOut(BaseModel):
    name: str
    passed: bool
    detail: str


class ChecksOut(BaseModel):
    passed: bool
    ran_at: str
    results: list[CheckResultOut]
    request_id: str | None


class WebhookOut(BaseModel):
    id: str
    name: str
    url: str
    events: list[str]
    model: str | None
    active: bool
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, h: Webhook) -> WebhookOut:
        return cls(id=h.id, name=h.name, url=h.url, events=list(h.events), model=h.model_name, active=h.active,
                   created_by=h.created_by, created_at=h.created_at)


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret; shown only in this response")


class DeliveryOut(BaseModel):
    id: str
    subscriber: str
    event_id: int
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: EventDelivery) -> DeliveryOut:
        return cls(id=d.id, subscriber=d.subscriber, event_id=d.event_id, status=d.status, attempts=d.attempts,
                   next_attempt_at=d.next_attempt_at, last_error=d.last_error, last_status_code=d.last_status_code,
                   created_at=d.created_at, delivered_at=d.delivered_at)


# --- models and versions ---------------------------------------------------------------------


@router.get("/models", response_model=list[ModelOut])
def list_models(svc: Models, catalog: str | None = None, schema: str | None = None) -> list[ModelOut]:
    """Registered models the caller may read, by name."""
    return [ModelOut.of(m) for m in svc.list_models(catalog, schema)]


@router.get("/models/{name}", response_model=ModelOut)
def get_model(svc: Models, name: str) -> ModelOut:
    return ModelOut.of(svc.get_model(name))


@router.patch("/models/{name}", response_model=ModelOut)
def update_model(svc: Models, name: str, body: ModelUpdate) -> ModelOut:
    """Change a model's description, tags or compliance-check configuration."""
    return ModelOut.of(svc.update_model(name, body.description, body.tags, body.checks))


@router.get("/models/{name}/versions", response_model=list[VersionOut])
def list_versions(
    svc: Models, name: str, stage: Annotated[str | None, Query(max_length=32)] = None
) -> list[VersionOut]:
    """The model's versions, oldest first (without manifests)."""
    return [VersionOut.of(v) for v in svc.versions(name, stage)]


@router.post("/models/{name}/versions", response_model=VersionOut, status_code=201)
def register_version(svc: Models, name: str, body: VersionIn) -> VersionOut:
    """Register the model folder run ``run_id`` logged at ``artifact_path`` as the next version. The
    server reads the files from its artifact store and records their SHA-256 itself."""
    info = svc.register_logged_model(name, body.run_id, body.artifact_path, description=body.description,
                                     tags=body.tags, trained_on=body.trained_on, flavor=body.flavor,
                                     feature_spec=body.feature_spec)
    return VersionOut.of(info, manifest=True)


@router.get("/models/{name}/versions/{version}", response_model=VersionOut)
def get_version(svc: Models, name: str, version: VersionRef) -> VersionOut:
    """A version by number, alias (champion, challenger) or stage, with its manifest."""
    return VersionOut.of(svc.get_version(name, _ref(version)), manifest=True)


@router.patch("/models/{name}/versions/{version}", response_model=VersionOut)
def update_version(svc: Models, name: str, version: VersionNumber, body: VersionUpdate) -> VersionOut:
    fields = body.model_dump(exclude_none=True)
    if not fields:
        return VersionOut.of(svc.get_version(name, version))
    return VersionOut.of(svc.update_version(name, version, **fields))


@router.get("/models/{name}/history", response_model=list[StageChangeOut])
def history(
    svc: Models, name: str, version: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None
) -> list[StageChangeOut]:
    """Stage changes of the model (or of one version), oldest first."""
    return [StageChangeOut.of(c) for c in svc.history(name, version)]


@router.post("/models/{name}/rollback", response_model=VersionOut)
def rollback(svc: Models, name: str, body: CommentIn) -> VersionOut:
    """Return Production to the version that held it before the current one."""
    return VersionOut.of(svc.rollback(name, body.comment))


# --- transition requests ---------------------------------------------------------------------


@router.post("/models/{name}/versions/{version}/requests", response_model=RequestOut, status_code=201)
def request_transition(svc: Models, name: str, version: VersionNumber, body: TransitionIn) -> RequestOut:
    """Ask for the version to move to ``stage``; moves to Staging or Production run the compliance
    checks now (``version.checks``), and the request waits for an approver."""
    return RequestOut.of(svc.request_transition(name, version, body.stage, body.comment))


@router.get("/model-requests", response_model=list[RequestOut])
def list_requests(
    svc: Models, name: str | None = None, version: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    status: Literal["pending", "approved", "rejected", "cancelled", "all"] = "pending",
) -> list[RequestOut]:
    """Transition requests of one model or of every model the caller may read (default: pending)."""
    return [RequestOut.of(r) for r in svc.requests(name, version, None if status == "all" else status)]


@router.post("/model-requests/{request_id}/approve", response_model=VersionOut)
def approve(svc: Models, request_id: RequestId, body: ApproveIn) -> VersionOut:
    """Approve a pending request and carry it out; returns the moved version."""
    return VersionOut.of(svc.approve(request_id, body.comment, body.override_reason))


@router.post("/model-requests/{request_id}/reject", response_model=RequestOut)
def reject(svc: Models, request_id: RequestId, body: CommentIn) -> RequestOut:
    return RequestOut.of(svc.reject(request_id, body.comment))


@router.post("/model-requests/{request_id}/cancel", response_model=RequestOut)
def cancel(svc: Models, request_id: RequestId, body: CommentIn) -> RequestOut:
    return RequestOut.of(svc.cancel(request_id, body.comment))


# --- checks, card, comments ------------------------------------------------------------------


@router.post("/models/{name}/versions/{version}/checks", response_model=ChecksOut)
def run_checks(svc: Models, name: str, version: VersionNumber, body: ChecksIn) -> dict[str, Any]:
    """Run the model's compliance checks on the version and store the report on it."""
    return svc.run_checks(name, version, body.request_id)


@router.get("/models/{name}/versions/{version}/card", response_class=Response, responses={
    200: {"content": {"text/markdown": {"schema": {"type": "string"}}}, "description": "the card as markdown"}})
def card(svc: Models, name: str, version: VersionRef) -> Response:
    """The model card of a version, regenerated with what is recorded now."""
    return Response(svc.card(name, _ref(version)), media_type=MARKDOWN)


@router.post("/models/{name}/versions/{version}/card", response_model=VersionOut)
def set_card_fields(svc: Models, name: str, version: VersionNumber, body: CardIn) -> VersionOut:
    """Fill the card's human-written fields."""
    return VersionOut.of(svc.set_card_fields(name, version, **body.model_dump(exclude_none=True)))


@router.get("/models/{name}/versions/{version}/comments", response_model=list[CommentOut])
def comments(svc: Models, name: str, version: VersionNumber) -> list[CommentOut]:
    return [CommentOut.of(c) for c in svc.comments(name, version)]


@router.post("/models/{name}/versions/{version}/comments", response_model=CommentOut, status_code=201)
def comment(svc: Models, name: str, version: VersionNumber, body: ModelCommentIn) -> CommentOut:
    return CommentOut.of(svc.comment(name, version, body.text))


# --- webhooks --------------------------------------------------------------------------------


@router.post("/webhooks", response_model=WebhookCreated, status_code=201)
def create_webhook(hooks: Hooks, body: WebhookIn) -> WebhookCreated:
    """Register a webhook for registry events; its signing secret is returned only now."""
    hook, secret = hooks.create(body.name, body.url, body.events, body.model, body.secret)
    return WebhookCreated(**WebhookOut.of(hook).model_dump(), secret=secret)


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(hooks: Hooks) -> list[WebhookOut]:
    """Webhooks of models the caller may write (and workspace-wide ones for admins)."""
    return [WebhookOut.of(h) for h in hooks.list()]


@router.get("/webhooks/{hook_id}", response_model=WebhookOut)
def get_webhook(hooks: Hooks, hook_id: HookId) -> WebhookOut:
    return WebhookOut.of(hooks.get(hook_id))


@router.delete("/webhooks/{hook_id}", status_code=204)
def delete_webhook(hooks: Hooks, hook_id: HookId) -> Response:
    hooks.delete(hook_id)
    return Response(status_code=204)


@router.get("/webhooks/{hook_id}/deliveries", response_model=list[DeliveryOut])
def deliveries(
    hooks: Hooks, hook_id: HookId, status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """The webhook's delivery log, newest event first."""
    return [DeliveryOut.of(d) for d in hooks.deliveries(hook_id, status, limit)]
