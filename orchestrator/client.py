"""Forwarding public API requests to the engine with one shared `httpx.AsyncClient`.

Bodies, files and Server-Sent Events are streamed both ways, never buffered whole. The user is
always the orchestrator's own notion of it, sent as the engine's `user_id` query parameter.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from engine.contract.errors import EngineTimeout, EngineUnavailable

PASSED_HEADERS = ("content-type", "content-disposition", "cache-control", "x-accel-buffering")


class EngineClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(
            base_url=base_url,
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

    async def forward(
        self,
        request: Request,
        path: str,
        user: str,
        *,
        body: bytes | None = None,
        stream_body: bool = False,
    ) -> Response:
        """Send to the engine as `user` and pass its answer back, status and headers included:
        JSON whole (it is small, and one write is cheaper), files and events streamed.
        `body` is a checked body to send; `stream_body` streams the client's body through."""
        query = {**request.query_params, "user_id": user}
        headers = {}
        if (body is not None or stream_body) and "content-type" in request.headers:
            headers["content-type"] = request.headers["content-type"]
        content: bytes | AsyncIterator[bytes] | None = request.stream() if stream_body else body
        req = self.http.build_request(
            request.method, path, params=query, content=content, headers=headers
        )
        with self._errors():
            resp = await self.http.send(req, stream=True)
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
