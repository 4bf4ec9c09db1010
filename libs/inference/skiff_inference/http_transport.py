"""HTTP plumbing shared by the HTTP engines: requests whose failures become `EngineError`.

Transient (worth retrying): timeouts, connection failures, 408, 429 and 5xx.
Not transient: other 4xx, an unusable URL, and a response that is not the expected JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from skiff_inference.engine import EngineError

_RETRYABLE_STATUS = frozenset({408, 429})
_BODY_EXCERPT = 500


def make_client(
    base_url: str,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An `AsyncClient` rooted at `base_url` (its paths are joined, not replaced)."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        timeout=timeout_s,
        headers=dict(headers or {}),
        transport=transport,
    )


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    what: str,
    body: Mapping[str, Any] | None = None,
) -> Any:
    """Send one request and return its decoded JSON body, or raise `EngineError`."""
    try:
        response = await client.request(method, path.lstrip("/"), json=body)
    except httpx.UnsupportedProtocol as exc:
        raise EngineError(f"{what}: unusable URL: {exc}", transient=False) from exc
    except httpx.TimeoutException as exc:
        raise EngineError(f"{what}: timed out ({type(exc).__name__})", transient=True) from exc
    except httpx.TransportError as exc:
        raise EngineError(f"{what}: {type(exc).__name__}: {exc}", transient=True) from exc
    except httpx.InvalidURL as exc:
        raise EngineError(f"{what}: unusable URL: {exc}", transient=False) from exc
    raise_for_status(response, what=what)
    try:
        return response.json()
    except ValueError as exc:
        raise EngineError(
            f"{what}: response is not JSON: {response.text[:_BODY_EXCERPT]!r}", transient=False
        ) from exc


def raise_for_status(response: httpx.Response, *, what: str) -> None:
    """Raise `EngineError` for a non-2xx response, transient for 408/429/5xx."""
    if response.is_success:
        return
    status = response.status_code
    transient = status >= 500 or status in _RETRYABLE_STATUS
    raise EngineError(
        f"{what}: HTTP {status}: {response.text[:_BODY_EXCERPT]}", transient=transient
    )


def bad_shape(what: str, exc: Exception) -> EngineError:
    """The error for a 2xx response whose JSON lacks the fields the engine needs."""
    return EngineError(
        f"{what}: unexpected response shape ({type(exc).__name__}: {exc})", transient=False
    )
