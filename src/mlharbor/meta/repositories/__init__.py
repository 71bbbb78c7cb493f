"""Repositories of the metadata store: each takes and returns :mod:`mlharbor.core.entities`."""

from mlharbor.meta.repositories.audit import AuditRepository
from mlharbor.meta.repositories.auth import GrantRepository, PrincipalRepository, TokenRepository
from mlharbor.meta.repositories.functions import FunctionRepository
from mlharbor.meta.repositories.jobs import JobRepository
from mlharbor.meta.repositories.kv import KeyValueRepository
from mlharbor.meta.repositories.lineage import LineageRepository
from mlharbor.meta.repositories.outbox import OutboxRepository
from mlharbor.meta.repositories.registry import RegistryRepository
from mlharbor.meta.repositories.tables import TableRepository
from mlharbor.meta.repositories.webhooks import WebhookRepository

__all__ = [
    "AuditRepository",
    "FunctionRepository",
    "GrantRepository",
    "JobRepository",
    "KeyValueRepository",
    "LineageRepository",
    "OutboxRepository",
    "PrincipalRepository",
    "RegistryRepository",
    "TableRepository",
    "TokenRepository",
    "WebhookRepository",
]
