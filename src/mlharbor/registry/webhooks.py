"""Webhooks: who receives which registry events, with secrets encrypted at rest.

A webhook for one model (``model="dev.ml.churn"``) needs ``write`` in that model's environment; one for
every model needs ``manage`` in every environment. Its URL must be http(s) and, unless the workspace
policy allows it (``[policy] webhook_allow_private``), must not resolve to a private, loopback,
link-local or otherwise reserved address — checked when it is created and again at each delivery
(a name can be re-pointed). The signing secret is shown once, when the webhook is created.
"""

from __future__ import annotations

import builtins
import ipaddress
import secrets
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.auth.secrets import SecretBox
from mlharbor.catalog.service import catalog_environment
from mlharbor.core.clock import utcnow
from mlharbor.core.entities import EventDelivery, Webhook
from mlharbor.core.ids import new_id
from mlharbor.core.names import parse_name
from mlharbor.errors import InvalidArgument
from mlharbor.registry import events

if TYPE_CHECKING:
    from mlharbor.catalog.service import CatalogContext
    from mlharbor.core.actors import Actor

MAX_URL = 2048


def webhook_subscriber(hook_id: str) -> str:
    return f"webhook:{hook_id}"


def check_destination(url: str, allow_private: bool) -> None:
    """InvalidArgument unless ``url`` is http(s) and resolves only to public addresses (or private
    ones are allowed)."""
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise InvalidArgument(f"a webhook URL is a string of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a malformed IPv6 host, a port out of range, invalid characters
        raise InvalidArgument(f"webhook URL {url!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"webhook URL {url!r} must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise InvalidArgument("put webhook credentials in its secret, not in the URL")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError) as exc:
        raise InvalidArgument(f"webhook host {parts.hostname!r} does not resolve: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            raise InvalidArgument(
                f"webhook host {parts.hostname!r} resolves to {address}, a private or reserved address; "
                "allow it with [policy] webhook_allow_private = true if it is meant to be internal")


class WebhookService:
    """Create, list and delete webhooks; read their delivery log."""

    def __init__(self, ctx: CatalogContext, actor: Actor) -> None:
        self._ctx = ctx
        self._actor = actor

    def _authorize(self, model: str | None, action: str) -> str | None:
        if model is None:
            self._ctx.auth.authorize_everywhere(self._actor, Permission.MANAGE, action, "webhooks")
            return None
        obj = parse_name(model, "model name")
        env = catalog_environment(self._ctx.settings, obj)
        self._ctx.auth.authorize(self._actor, Permission.WRITE, env, action, f"model:{obj}")
        return str(obj)

    def create(self, name: str, url: str, events_: builtins.list[str] | None = None, model: str | None = None,
               secret: str | None = None) -> tuple[Webhook, str]:
        """Register a webhook; returns it and its signing secret (shown only now)."""
        model_name = self._authorize(model, "webhook.create")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidArgument("a webhook needs a name of at most 200 characters")
        kinds = tuple(events_ or ())
        unknown = sorted(set(kinds) - set(events.KINDS))
        if unknown:
            raise InvalidArgument(f"unknown event kinds {unknown}; use {', '.join(events.KINDS)}")
        check_destination(url, self._ctx.settings.policy.webhook_allow_private)
        secret = secret or secrets.token_urlsafe(32)
        if len(secret) < 16:
            raise InvalidArgument("a webhook secret needs at least 16 characters")
        hook = Webhook(new_id(), name.strip(), url, kinds, model_name, True, self._actor.principal, utcnow())
        sealed = SecretBox(self._ctx.settings.home).encrypt(secret)
        with self._ctx.store.transaction() as tx:
            stored = tx.webhooks.add(hook, sealed)
            # start at the current end of the outbox: a new webhook gets events from now on
            latest = tx.outbox.after(0, limit=1, newest=True)
            tx.webhooks.set_cursor(webhook_subscriber(hook.id), latest[0].id if latest else 0)
            record(tx, self._actor, "webhook.create", f"webhook:{hook.id}",
                   {"url": url, "model": model_name, "events": list(kinds)})
        return stored, secret

    def list(self) -> builtins.list[Webhook]:
        """Webhooks of models you may write, and workspace-wide ones if you manage everything."""
        with self._ctx.store.transaction() as tx:
            hooks = tx.webhooks.list()
        visible = []
        for hook in hooks:
            try:
                self._check_quietly(hook.model_name)
            except Exception:
                continue
            visible.append(hook)
        return visible

    def _check_quietly(self, model: str | None) -> None:
        from mlharbor.core.entities import Environment

        if model is None:
            if not all(Permission.MANAGE in self._ctx.auth.permissions(self._actor, e) for e in Environment):
                raise PermissionError
            return
        env = catalog_environment(self._ctx.settings, parse_name(model))
        if Permission.WRITE not in self._ctx.auth.permissions(self._actor, env):
            raise PermissionError

    def get(self, hook_id: str) -> Webhook:
        with self._ctx.store.transaction() as tx:
            hook = tx.webhooks.get(hook_id)
        self._authorize(hook.model_name, "webhook.read")
        return hook

    def delete(self, hook_id: str) -> None:
        hook = self.get(hook_id)
        self._authorize(hook.model_name, "webhook.delete")
        with self._ctx.store.transaction() as tx:
            tx.webhooks.remove(hook_id)
            record(tx, self._actor, "webhook.delete", f"webhook:{hook_id}")

    def deliveries(self, hook_id: str, status: str | None = None, limit: int = 100) -> builtins.list[EventDelivery]:
        """The delivery log of a webhook, newest event first."""
        self.get(hook_id)
        with self._ctx.store.transaction() as tx:
            return tx.webhooks.deliveries(webhook_subscriber(hook_id), status, limit)
