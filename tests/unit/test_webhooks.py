"""Webhooks and internal subscribers: at-least-once delivery from the outbox, signatures, backoff,
address checks, secrets encrypted at rest."""

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlharbor.core.entities import OutboxEvent
from mlharbor.errors import InvalidArgument, PermissionDenied
from mlharbor.registry import events
from mlharbor.registry.delivery import EventDispatcher, InternalSubscriber, verify_signature
from mlharbor.workspace import Workspace

MODEL = "dev.ml.hooked"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies signatures and records delivery ids."""

    def __init__(self, port: int, secret: str, fail_first: int = 0) -> None:
        self.port, self.secret, self.fail_first = port, secret, fail_first
        self.received: list[dict[str, object]] = []
        self.deliveries: list[str] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not verify_signature(receiver.secret, self.headers["X-Mlharbor-Timestamp"], body,
                                        self.headers["X-Mlharbor-Signature"]):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                elif receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                else:
                    receiver.received.append(json.loads(body))
                    receiver.deliveries.append(self.headers["X-Mlharbor-Delivery"])
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "mlharbor.toml").write_text(
        "[policy]\nwebhook_allow_private = true\nwebhook_backoff_seconds = 0.01\nallow_self_approval = true\n")
    return tmp_path


@pytest.fixture
def ws(home: Path) -> Iterator[Workspace]:
    with Workspace.open(home) as w:
        yield w


def log_version(ws: Workspace, name: str = MODEL) -> int:
    x = pd.DataFrame(np.random.default_rng(0).random((30, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(x, (x["a"] > 0.5).astype(int))
    return ws.models.log_model(model, name, input_example=x.head(2), description="d").version


def drain(dispatcher: EventDispatcher, rounds: int = 200) -> None:
    import time

    for _ in range(rounds):
        dispatcher.run_once()
        with dispatcher._store.transaction() as tx:
            if not tx.webhooks.deliveries(status="pending", limit=1):
                return
        time.sleep(0.02)
    raise AssertionError("deliveries still pending")


def test_receiver_down_gets_every_event_once_after_it_comes_back(ws: Workspace) -> None:
    port = free_port()
    hook, secret = ws.models.webhooks.create("ci", f"http://127.0.0.1:{port}/hook", model=MODEL)
    assert len(secret) >= 32
    version = log_version(ws)
    request = ws.models.request_transition(MODEL, version, "Staging")
    ws.models.approve(request.id)
    dispatcher = ws.services.dispatcher()
    for _ in range(3):  # receiver down: attempts fail and are rescheduled
        dispatcher.run_once()
    log = ws.models.webhooks.deliveries(hook.id)
    assert log and all(d.status == "pending" and d.attempts >= 1 and d.last_error for d in log)
    receiver = Receiver(port, secret, fail_first=2)  # back, but answers 503 twice first
    try:
        drain(dispatcher)
    finally:
        receiver.stop()
    with ws.services.store.transaction() as tx:
        expected = [e.id for e in tx.outbox.after(0, limit=1000) if e.resource.startswith(f"model:{MODEL}")]
    assert sorted(r["event_id"] for r in receiver.received) == expected  # type: ignore[type-var]
    assert len(receiver.deliveries) == len(set(receiver.deliveries)) == len(expected)
    kinds = {r["kind"] for r in receiver.received}
    assert {events.VERSION_REGISTERED, events.TRANSITION_REQUESTED, events.STAGE_CHANGED} <= kinds
    assert receiver.bad_signatures == 0
    assert all(d.status == "delivered" and d.last_status_code == 204 for d in ws.models.webhooks.deliveries(hook.id))
    dispatcher.run_once()  # nothing more to send
    assert len(receiver.deliveries) == len(expected)


def test_filters_failures_and_internal_subscribers(ws: Workspace) -> None:
    got: list[OutboxEvent] = []
    flaky = {"left": 1}

    def handle(event: OutboxEvent) -> None:
        if flaky["left"]:
            flaky["left"] -= 1
            raise RuntimeError("not yet")
        got.append(event)

    dispatcher = EventDispatcher(ws.services.store, ws.services.settings,
                                 [InternalSubscriber("triggers", (events.VERSION_REGISTERED,), handle)])
    sent: list[str] = []
    other = ws.models.webhooks.create("registrations", "http://127.0.0.1:9/x", events_=[events.VERSION_REGISTERED])[0]
    dispatcher._post = lambda url, body, headers: sent.append(json.loads(body)["resource"]) or 200  # type: ignore[assignment,func-returns-value]
    log_version(ws, "dev.ml.a")
    log_version(ws, "dev.ml.b")
    drain(dispatcher)
    assert sorted(e.payload["name"] for e in got) == ["dev.ml.a", "dev.ml.b"]  # one retried after a failure
    assert sent == ["model:dev.ml.a@1", "model:dev.ml.b@1"]  # only the kind asked for, every model
    assert {d.status for d in ws.models.webhooks.deliveries(other.id)} == {"delivered"}


def test_give_up_after_max_attempts(home: Path) -> None:
    (home / "mlharbor.toml").write_text("[policy]\nwebhook_allow_private = true\nwebhook_backoff_seconds = 0.01\n"
                                        "webhook_max_attempts = 2\n")
    with Workspace.open(home) as ws:
        hook = ws.models.webhooks.create("dead", f"http://127.0.0.1:{free_port()}/", model=MODEL)[0]
        log_version(ws)
        drain(ws.services.dispatcher())
        log = ws.models.webhooks.deliveries(hook.id)
        assert log and all(d.status == "failed" and d.attempts == 2 for d in log)


def test_private_addresses_and_bad_input_are_refused(tmp_path: Path) -> None:
    with Workspace.open(tmp_path) as ws:
        for url in ("http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://169.254.169.254/latest",
                    "http://[::1]/x", "http://localhost/x"):
            with pytest.raises(InvalidArgument, match="private or reserved"):
                ws.models.webhooks.create("x", url)
        for url in ("ftp://example.com/x", "file:///etc/passwd", "http://user:pw@example.com/"):
            with pytest.raises(InvalidArgument):
                ws.models.webhooks.create("x", url)
        with pytest.raises(InvalidArgument, match="unknown event kinds"):
            ws.models.webhooks.create("x", "http://127.0.0.1/", events_=["nope"])
        ws.access.create_principal("dana")
        ws.access.grant("dana", "data_scientist")
    with Workspace.open(tmp_path, principal="dana") as dana:
        with pytest.raises(PermissionDenied):
            dana.models.webhooks.create("all", "http://example.com/")  # workspace-wide needs manage
        with pytest.raises(PermissionDenied):
            dana.models.webhooks.create("prod", "http://example.com/", model="prod.ml.x")


def test_secret_is_encrypted_at_rest(ws: Workspace, home: Path) -> None:
    hook, secret = ws.models.webhooks.create("x", "http://127.0.0.1:9/", secret="s" * 40)
    with ws.services.store.transaction() as tx:
        sealed = tx.webhooks.secret(hook.id)
    assert secret not in sealed and "s" * 20 not in sealed
    assert (home / ".mlharbor" / "secret.key").stat().st_mode & 0o077 == 0
    assert not any(secret.encode() in p.read_bytes() for p in (home / ".mlharbor").glob("*.db"))
