"""A steady stream of import requests, sent the way a careful client sends them.

Every POST carries an ``Idempotency-Key`` and is retried with the same key, with
a growing pause, until the API answers 200 — through API restarts and database
outages — so each acknowledged request must end as exactly one job. About one
video in five re-imports an earlier external id (half with a new url: an update
that downloads again, half unchanged: a skip), so the create-or-update path is
under fault as well. One video in twenty is larger than a multipart part.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .client_side import ClientSide

API_VERSION = "2025-03"
SYSTEM = "archive"
SMALL = 100 * 1024
LARGE = 6 * 1024 * 1024


@dataclass(frozen=True)
class Acknowledged:
    key: str
    job_id: str
    videos: int
    attempts: int


@dataclass
class Workload:
    api_url: str
    token: str
    client: ClientSide
    batch: int = 10
    large_share: float = 0.05
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    acknowledged: list[Acknowledged] = field(default_factory=list)
    retried_posts: int = 0
    posts_in_flight: int = 0
    _known: list[tuple[str, str]] = field(default_factory=list)
    _serial: int = 0

    @property
    def videos(self) -> int:
        return sum(a.videos for a in self.acknowledged)

    def _video(self) -> dict[str, Any]:
        if self._known and self.rng.random() < 0.2:
            external_id, url = self.rng.choice(self._known)
            if self.rng.random() < 0.5:  # a new url: an update that downloads again
                url = self.client.video_url(f"{external_id}-{secrets.token_hex(3)}", SMALL)
            return {"id": external_id, "url": url, "fileName": f"{external_id}.mp4"}
        self._serial += 1
        external_id = f"v{self._serial}-{secrets.token_hex(3)}"
        size = LARGE if self.rng.random() < self.large_share else SMALL
        url = self.client.video_url(external_id, size)
        self._known.append((external_id, url))
        return {"id": external_id, "url": url, "fileName": f"{external_id}.mp4"}

    def body(self) -> dict[str, Any]:
        videos: dict[str, dict[str, Any]] = {}
        while len(videos) < self.batch:
            video = self._video()
            videos.setdefault(video["id"], video)  # one entry per id within a batch
        return {
            "systemName": SYSTEM,
            "webhook": self.client.webhook_url,
            "context": {"batch": self._serial},
            "videos": [{**v, "metadata": {"title": v["id"]}} for v in videos.values()],
        }

    async def post(self, http: aiohttp.ClientSession, within: float = 300.0) -> Acknowledged:
        """POST one batch until acknowledged (same key every time)."""
        body = self.body()
        key = secrets.token_hex(12)
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": key}
        deadline = time.monotonic() + within
        attempts, pause = 0, 0.2
        while True:
            attempts += 1
            self.posts_in_flight += 1
            try:
                async with http.post(
                    f"{self.api_url}/api/{API_VERSION}/import/videos",
                    json=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as response:
                    if response.status == 200:
                        job_id = str((await response.json())["id"])
                        ack = Acknowledged(key, job_id, len(body["videos"]), attempts)
                        self.acknowledged.append(ack)
                        return ack
                    if response.status < 500 and response.status != 429:
                        raise RuntimeError(
                            f"POST refused: {response.status} {await response.text()}"
                        )
            except (TimeoutError, aiohttp.ClientError):
                pass  # the API is away (killed, restarting): try again with the same key
            finally:
                self.posts_in_flight -= 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer to a POST within {within:.0f} s ({attempts} tries)")
            self.retried_posts += 1
            await asyncio.sleep(pause * (0.8 + 0.4 * self.rng.random()))
            pause = min(pause * 2, 3.0)

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Post a batch every ``interval`` seconds (or as soon as the previous one is
        acknowledged, when that takes longer) until ``stop`` is set."""
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                began = time.monotonic()
                await self.post(http)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), max(0.0, interval - (time.monotonic() - began))
                    )
