"""ws.access on a local workspace: the same calls as through the server, bound to the actor."""

from pathlib import Path

import pytest

from mlharbor.errors import NotFound, PermissionDenied
from mlharbor.workspace import Workspace


def test_local_access_binds_the_workspace_principal(tmp_path: Path) -> None:
    with Workspace.open(tmp_path) as ws:
        assert ws.access.whoami()["roles"] == {"dev": "admin", "staging": "admin", "prod": "admin"}
        ws.access.create_principal("ana")
        ws.access.grant("ana", "viewer")
        token, secret = ws.access.create_token("laptop", principal="ana")
        assert ws.auth.authenticate(secret).principal == "ana"
        with pytest.raises(NotFound):
            ws.access.grant("ghost", "viewer")
    with Workspace.open(tmp_path, principal="ana") as ana:
        assert ana.access.whoami()["roles"]["dev"] == "viewer"
        assert [t.id for t in ana.access.list_tokens()] == [token.id]
        with pytest.raises(PermissionDenied):
            ana.access.list_tokens("*")
        with pytest.raises(PermissionDenied):
            ana.access.grant("ana", "admin")
        ana.access.revoke_token(token.id)  # your own tokens you may revoke
    with Workspace.open(tmp_path) as ws:
        assert ws.access.audit_log(principal="ana", decision="denied")[0].action == "grant.put"
