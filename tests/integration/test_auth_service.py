"""AuthService on SQLite and on the real PostgreSQL: tokens, grants, the policy, the audit log."""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from mlharbor.auth.policy import Permission
from mlharbor.auth.service import AuthService
from mlharbor.auth.tokens import hash_secret
from mlharbor.core.actors import Actor
from mlharbor.core.entities import Decision, Environment, Role
from mlharbor.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from mlharbor.meta import MetadataStore

ADMIN = Actor.local_admin("root")


@pytest.fixture
def auth(metadata_url: str) -> Iterator[AuthService]:
    store = MetadataStore(metadata_url)
    store.upgrade()
    yield AuthService(store)
    store.dispose()


def _user(auth: AuthService, name: str, role: Role | None, envs: list[str] | None = None) -> Actor:
    auth.create_principal(ADMIN, name)
    if role is not None:
        auth.grant(ADMIN, name, role, envs)  # type: ignore[arg-type]
    return Actor(principal=name)


def test_bootstrap_happens_once_and_gives_a_working_admin_token(auth: AuthService) -> None:
    secret = auth.bootstrap_admin()
    assert secret is not None and secret.startswith("mlh_")
    assert auth.bootstrap_admin() is None
    actor = auth.authenticate(secret)
    assert actor.principal == "admin" and not actor.is_local_admin
    assert Permission.MANAGE in auth.permissions(actor, Environment.PROD)


def test_tokens_are_hashed_shown_once_expire_and_revoke(auth: AuthService) -> None:
    alice = _user(auth, "alice", Role.DATA_SCIENTIST)
    token, secret = auth.create_token(alice, "laptop")
    assert token.token_hash == hash_secret(secret) and secret not in repr(token)
    assert all(t.token_hash != secret for t in auth.list_tokens(alice, "alice"))
    assert auth.authenticate(secret).principal == "alice"
    with pytest.raises(Unauthenticated):
        auth.authenticate(secret + "x")
    with pytest.raises(Unauthenticated):
        auth.authenticate(None)
    auth.revoke_token(alice, token.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(secret)
    # expired
    short, short_secret = auth.create_token(alice, "short", ttl_days=1e-9)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(short_secret)
    assert short.expires_at is not None and short.expires_at - short.created_at < timedelta(seconds=1)
    with pytest.raises(InvalidArgument):
        auth.create_token(alice, "   ")


def test_deactivated_principal_cannot_authenticate(auth: AuthService) -> None:
    bob = _user(auth, "bob", Role.ML_ENGINEER)
    _, secret = auth.create_token(bob, "ci")
    auth.set_active(ADMIN, "bob", False)
    with pytest.raises(Unauthenticated, match="deactivated"):
        auth.authenticate(secret)
    assert auth.permissions(bob, Environment.DEV) == frozenset()


@pytest.mark.parametrize(
    ("role", "env", "expected"),
    [
        (Role.VIEWER, "dev", {"read"}),
        (Role.VIEWER, "prod", {"read"}),
        (Role.DATA_SCIENTIST, "dev", {"read", "write", "request"}),
        (Role.DATA_SCIENTIST, "staging", {"read", "request"}),
        (Role.DATA_SCIENTIST, "prod", {"read", "request"}),
        (Role.ML_ENGINEER, "staging", {"read", "write", "request", "approve"}),
        (Role.ML_ENGINEER, "prod", {"read", "write", "request", "approve"}),
        (Role.ADMIN, "prod", {"read", "write", "manage", "request", "approve"}),
    ],
)
def test_default_policy(auth: AuthService, role: Role, env: str, expected: set[str]) -> None:
    actor = _user(auth, "p", role)
    assert {p.value for p in auth.permissions(actor, Environment(env))} == expected


def test_roles_are_per_environment(auth: AuthService) -> None:
    carol = _user(auth, "carol", Role.ML_ENGINEER, ["staging"])
    assert auth.permissions(carol, Environment.STAGING) == {Permission.READ, Permission.WRITE, Permission.REQUEST,
                                                            Permission.APPROVE}
    assert auth.permissions(carol, Environment.PROD) == frozenset()


def test_denials_are_audited_and_only_admins_manage(auth: AuthService) -> None:
    dan = _user(auth, "dan", Role.DATA_SCIENTIST)
    with pytest.raises(PermissionDenied, match="lacks 'write' in prod"):
        auth.authorize(dan, Permission.WRITE, Environment.PROD, "table.append", "table:prod.x.y")
    with pytest.raises(PermissionDenied):
        auth.grant(dan, "dan", Role.ADMIN)
    with pytest.raises(PermissionDenied):
        auth.create_principal(dan, "eve")
    with pytest.raises(PermissionDenied):
        auth.audit_log(dan)
    denied = auth.audit_log(ADMIN, decision=Decision.DENIED)
    assert [e.action for e in denied][:4] == ["audit.list", "principal.create", "grant.put", "table.append"]
    assert all(e.actor == "dan" and e.request_id == dan.request_id for e in denied)
    allowed = auth.audit_log(ADMIN, principal="root", action="grant.put")
    assert allowed and all(e.decision is Decision.ALLOWED for e in allowed)


def test_tokens_for_others_need_manage(auth: AuthService) -> None:
    dan = _user(auth, "dan", Role.DATA_SCIENTIST)
    svc = _user(auth, "etl", None)
    with pytest.raises(PermissionDenied):
        auth.create_token(dan, "x", principal="etl")
    token, _ = auth.create_token(ADMIN, "x", principal="etl")
    with pytest.raises(PermissionDenied):
        auth.revoke_token(dan, token.id)
    assert auth.revoke_token(ADMIN, token.id).revoked_at is not None
    assert svc.principal == "etl"
    with pytest.raises(NotFound):
        auth.create_token(ADMIN, "x", principal="ghost")


def test_grant_validation(auth: AuthService) -> None:
    _user(auth, "fay", None)
    with pytest.raises(InvalidArgument, match="unknown role"):
        auth.grant(ADMIN, "fay", "owner")
    with pytest.raises(InvalidArgument, match="unknown environment"):
        auth.grant(ADMIN, "fay", Role.VIEWER, ["qa"])
    auth.grant(ADMIN, "fay", Role.VIEWER, ["dev"])
    auth.grant(ADMIN, "fay", Role.ADMIN, ["dev"])  # upsert: one role per environment
    assert [(g.environment.value, g.role.value) for g in auth.list_grants(ADMIN, "fay")] == [("dev", "admin")]
    auth.revoke_grant(ADMIN, "fay", "dev")
    assert auth.list_grants(ADMIN, "fay") == []
    with pytest.raises(NotFound):
        auth.revoke_grant(ADMIN, "fay", "dev")


def test_an_admin_of_one_environment_cannot_reach_the_others(auth: AuthService) -> None:
    root = _user(auth, "boss", Role.ADMIN)
    dev_admin = _user(auth, "devadmin", Role.ADMIN, ["dev"])
    auth.create_token(root, "ops", principal="boss")
    # environment-scoped management works in dev only
    _user(auth, "newbie", None)
    auth.grant(dev_admin, "newbie", Role.ML_ENGINEER, ["dev"])
    with pytest.raises(PermissionDenied):
        auth.grant(dev_admin, "devadmin", Role.ADMIN, ["prod"])
    # nothing that spans environments: no tokens for others, no principals, no audit log
    with pytest.raises(PermissionDenied):
        auth.create_token(dev_admin, "steal", principal="boss")
    with pytest.raises(PermissionDenied):
        auth.list_tokens(dev_admin, "boss")
    with pytest.raises(PermissionDenied):
        auth.set_active(dev_admin, "boss", False)
    with pytest.raises(PermissionDenied):
        auth.create_principal(dev_admin, "sock_puppet")
    with pytest.raises(PermissionDenied):
        auth.audit_log(dev_admin)
    assert auth.permissions(Actor(principal="devadmin"), Environment.PROD) == frozenset()


@pytest.mark.parametrize("ttl", [0, -1, 3651, 1e7])
def test_token_lifetime_is_bounded(auth: AuthService, ttl: float) -> None:
    _user(auth, "tess", Role.VIEWER)
    with pytest.raises(InvalidArgument, match="ttl_days"):
        auth.create_token(Actor(principal="tess"), "x", ttl_days=ttl)
