"""The importing system's side: an origin serving distinct videos, a webhook receiver.

Both listen on 127.0.0.1 only. The origin trickles its bytes out (a small video
takes 0.3 s, a large one 2 s) so that downloads, and the uploads streaming behind
them, are in flight most of the time: where a kill or a server restart hurts most.
The receiver answers after a short pause (so a webhook POST is in flight too),
records every delivery it accepts and can be taken "down" (answers 503) for as
long as a scenario needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sample.mp4"
CHUNK = 16 * 1024


def video_bytes(name: str, size: int) -> bytes:
    """A real mp4 header followed by bytes unique to ``name``: every video differs."""
    head = SAMPLE.read_bytes()
    seed = hashlib.sha256(name.encode()).digest()
    filler = (seed * (size // len(seed) + 1))[: max(0, size - len(head))]
    return head + filler


@dataclass
class Delivery:
    webhook_id: str
    job_id: str
    state: str


@dataclass
class ClientSide:
    """Origin + receiver in one aiohttp app; ``base_url`` once started."""

    small_seconds: float = 0.3
    large_seconds: float = 2.0
    """How long a download of a small (≤ 1 MiB) or a larger video takes, about."""
    answer_delay: float = 0.05
    base_url: str = ""
    down: bool = False
    refused: int = 0
    deliveries: dict[str, list[Delivery]] = field(default_factory=lambda: defaultdict(list))
    origin_requests: int = 0
    downloads_in_flight: int = 0
    webhooks_in_flight: int = 0
    _runner: web.AppRunner | None = None

    def video_url(self, name: str, size: int) -> str:
        """Where the origin serves a video of ``size`` bytes unique to ``name``."""
        return f"{self.base_url}/videos/{name}.mp4?size={size}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/hooks"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/videos/{name}.mp4", self._video)
        app.router.add_post("/hooks", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _video(self, request: web.Request) -> web.StreamResponse:
        self.origin_requests += 1
        self.downloads_in_flight += 1
        try:
            return await self._send_video(request)
        finally:
            self.downloads_in_flight -= 1

    async def _send_video(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        size = int(request.query.get("size", "102400"))
        body = video_bytes(name, size)
        response = web.StreamResponse(
            headers={"Content-Type": "video/mp4", "Content-Length": str(len(body))}
        )
        await response.prepare(request)
        seconds = self.small_seconds if size <= 1024 * 1024 else self.large_seconds
        pause = seconds / max(1, len(body) // CHUNK)
        try:
            for offset in range(0, len(body), CHUNK):
                await response.write(body[offset : offset + CHUNK])
                await asyncio.sleep(pause)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the ingester went away mid-download (killed): expected here
        return response

    async def _hook(self, request: web.Request) -> web.Response:
        self.webhooks_in_flight += 1
        try:
            body = await request.read()
            await asyncio.sleep(self.answer_delay)
        finally:
            self.webhooks_in_flight -= 1
        if self.down:
            self.refused += 1
            return web.Response(status=503)
        payload = json.loads(body)
        job_id = str(payload["id"])
        self.deliveries[job_id].append(
            Delivery(request.headers.get("webhook-id", ""), job_id, str(payload.get("state")))
        )
        return web.Response(status=204)
