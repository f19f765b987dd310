"""Forwarding public API requests to the engine with one shared `httpx.AsyncClient`.

Bodies, files and Server-Sent Events are streamed both ways, never buffered whole. The user is
always the orchestrator's own notion of it, sent as the engine's `user_id` query parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from engine.contract.errors import ClientClosed, EngineTimeout, EngineUnavailable
from engine.contract.schemas import ENGINE_TOKEN_HEADER

PASSED_HEADERS = (
    "content-type",
    "content-disposition",
    "cache-control",
    "x-accel-buffering",
    "retry-after",  # on 429 queue_full / too_many_jobs and 503s: when to try again
    "server-timing",  # a generation's wait, render and save (developer tools show it)
)


def engine_http(base_url: str, token: Callable[[], str | None], **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for the engine that sends the engine's current token on every request
    (a supervised engine gets a new one at each start)."""

    async def add_token(request: httpx.Request) -> None:
        if value := token():
            request.headers[ENGINE_TOKEN_HEADER] = value

    return httpx.AsyncClient(base_url=base_url, event_hooks={"request": [add_token]}, **kwargs)


class EngineClient:
    def __init__(self, base_url: str, timeout: float, token: Callable[[], str | None]) -> None:
        self.base_url = base_url
        self.http = engine_http(
            base_url,
            token,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """httpx's failures as the API's: an engine that is down, refuses, resets or drops
        the connection is unavailable (503); one that does not answer in time, 504."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise EngineTimeout(f"the engine did not answer in time ({exc})") from exc
        except httpx.TransportError as exc:
            raise EngineUnavailable(
                f"the engine at {self.base_url} is not reachable or dropped the connection "
                f"({type(exc).__name__}); it may be starting or restarting: see /health"
            ) from exc

    async def _send(self, req: httpx.Request, client: Request | None) -> httpx.Response:
        if client is None:
            return await self.http.send(req, stream=True)
        sending = asyncio.ensure_future(self.http.send(req, stream=True))
        while True:
            done, _ = await asyncio.wait({sending}, timeout=0.25)
            if done:
                return sending.result()
            if await client.is_disconnected():
                # Closing our connection tells the engine, which drops the work if it is
                # still waiting for the device.
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
                raise ClientClosed("the client went away before the engine answered")

    async def get_json(self, path: str, user: str) -> Any:
        """A small GET as `user`, for the orchestrator's own use (the admin's usage figures)."""
        with self._errors():
            resp = await self.http.get(path, params={"user_id": user})
        if resp.status_code != 200:
            raise EngineUnavailable(f"the engine answered {resp.status_code} to {path}")
        return resp.json()

    async def forward(
        self,
        request: Request,
        path: str,
        user: str,
        *,
        body: bytes | None = None,
        stream_body: bool = False,
        watch_client: bool = False,
    ) -> Response:
        """Send to the engine as `user` and pass its answer back, status and headers included:
        JSON whole (it is small, and one write is cheaper), files and events streamed.
        `body` is a checked body to send; `stream_body` streams the client's body through;
        `watch_client` hangs up on the engine when the client hangs up on us."""
        query = {**request.query_params, "user_id": user}
        headers = {}
        if (body is not None or stream_body) and "content-type" in request.headers:
            headers["content-type"] = request.headers["content-type"]
        content: bytes | AsyncIterator[bytes] | None = request.stream() if stream_body else body
        req = self.http.build_request(
            request.method, path, params=query, content=content, headers=headers
        )
        with self._errors():
            resp = await self._send(req, request if watch_client else None)
        out = {k: v for k, v in resp.headers.items() if k.lower() in PASSED_HEADERS}
        if resp.headers.get("content-type", "").startswith("application/json"):
            try:
                with self._errors():
                    data = await resp.aread()
            finally:
                await resp.aclose()
            return Response(data, status_code=resp.status_code, headers=out)
        return StreamingResponse(
            resp.aiter_raw(),
            status_code=resp.status_code,
            headers=out,
            background=BackgroundTask(resp.aclose),
        )
