"""HTTP transport with token auth; errors come back as the same mlharbor exceptions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from mlharbor.errors import BackendUnavailable, MlharborError, Unauthenticated, error_for_code


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        raise error_for_code(str(body["error_code"]), str(body["message"]))
    except (ValueError, KeyError, TypeError):
        raise MlharborError(f"HTTP {response.status_code} from {response.request.url}: {response.text[:500]}") from None


class RestClient:
    """A thin httpx wrapper for ``/api/v1``. Token from the argument or ``$MLHARBOR_TOKEN``."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        token = token or os.environ.get("MLHARBOR_TOKEN")
        if not token:
            raise Unauthenticated("no API token: pass token=... or set MLHARBOR_TOKEN")
        self.url = url.rstrip("/")
        self.token = token  # also given to MLflow's client for the server's tracking API and artifact proxy
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "mlharbor-client"},
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach mlharbor server at {self.url}: {exc}") from exc
        _raise_for(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                yield response
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach mlharbor server at {self.url}: {exc}") from exc

    def close(self) -> None:
        self._http.close()
