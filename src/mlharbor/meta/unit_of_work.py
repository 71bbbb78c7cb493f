"""The repositories bound to one database transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mlharbor.meta.repositories import (
    AuditRepository,
    FunctionRepository,
    GrantRepository,
    JobRepository,
    KeyValueRepository,
    LineageRepository,
    OutboxRepository,
    PrincipalRepository,
    RegistryRepository,
    TableRepository,
    TokenRepository,
    WebhookRepository,
)


class UnitOfWork:
    """Every repository of the metadata store, sharing one session and so one transaction.

    Obtain it from :meth:`mlharbor.meta.MetadataStore.transaction`; it is valid only inside that
    ``with`` block and in the thread that opened it. Changes made through any repository commit or
    roll back together.
    """

    tables: TableRepository
    principals: PrincipalRepository
    grants: GrantRepository
    tokens: TokenRepository
    audit: AuditRepository
    lineage: LineageRepository
    kv: KeyValueRepository
    functions: FunctionRepository
    registry: RegistryRepository
    outbox: OutboxRepository
    webhooks: WebhookRepository
    jobs: JobRepository

    def __init__(self, session: Session) -> None:
        self.tables = TableRepository(session)
        self.principals = PrincipalRepository(session)
        self.grants = GrantRepository(session)
        self.tokens = TokenRepository(session)
        self.audit = AuditRepository(session)
        self.lineage = LineageRepository(session)
        self.kv = KeyValueRepository(session)
        self.functions = FunctionRepository(session)
        self.registry = RegistryRepository(session)
        self.outbox = OutboxRepository(session)
        self.webhooks = WebhookRepository(session)
        self.jobs = JobRepository(session)
