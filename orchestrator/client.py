"""Forwarding public API requests to the engine with one shared `httpx.AsyncClient`.

Bodies, files and Server-Sent Events are streamed both ways, never buffered whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from orchestrator.errors import EngineTimeout, EngineUnavailable

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

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: AsyncIterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        req = self.http.build_request(
            method, path, params=params, json=json, content=content, headers=headers
        )
        try:
            return await self.http.send(req, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            raise EngineUnavailable(
                f"the engine at {self.base_url} is not reachable ({type(exc).__name__}); it "
                "may still be starting or restarting: see /health"
            ) from exc
        except httpx.TimeoutException as exc:
            raise EngineTimeout(f"the engine did not answer in time ({exc})") from exc

    async def forward(
        self,
        request: Request,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        stream_body: bool = False,
    ) -> Response:
        """Send to the engine and pass its answer back, status and headers included: JSON
        whole (it is small, and one write is cheaper), files and events streamed."""
        query = {**request.query_params, **(params or {})}
        headers = {}
        if stream_body and "content-type" in request.headers:
            headers["content-type"] = request.headers["content-type"]
        resp = await self.send(
            request.method,
            path,
            params=query,
            json=json,
            content=request.stream() if stream_body else None,
            headers=headers,
        )
        out = {k: v for k, v in resp.headers.items() if k.lower() in PASSED_HEADERS}
        if resp.headers.get("content-type", "").startswith("application/json"):
            try:
                body = await resp.aread()
            finally:
                await resp.aclose()
            return Response(body, status_code=resp.status_code, headers=out)
        return StreamingResponse(
            resp.aiter_raw(),
            status_code=resp.status_code,
            headers=out,
            background=BackgroundTask(resp.aclose),
        )

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        resp = await self.send("GET", path, params=params)
        try:
            await resp.aread()
            return resp.json()
        finally:
            await resp.aclose()
