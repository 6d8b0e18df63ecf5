"""Headless Chromium driven over the DevTools protocol (a websocket, JSON messages).

Just what the operator page's test needs: open a URL, type into a field, click, wait for
the next page load, read the page's text and URL, take a full-page PNG. Chromium is
Debian's, installed by ``python -m videoimport_devstack install``; the browser runs
with its own throw-away profile and only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 30.0
VIEWPORT = (1280, 900)


class BrowserError(AssertionError):
    """Chromium is missing, did not start, or answered a command with an error."""


def chromium_executable() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise BrowserError(
            "chromium is not on PATH: run `python -m videoimport_devstack install` "
            "(it installs Debian's chromium package)"
        )
    return found


class Page:
    """One tab, spoken to over its DevTools websocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._loads: list[asyncio.Future[None]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            payload = json.loads(message.data)
            if "id" in payload:
                reply = self._replies.pop(payload["id"], None)
                if reply is not None and not reply.done():
                    reply.set_result(payload)
            elif payload.get("method") == "Page.loadEventFired":
                loads, self._loads = self._loads, []
                for load in loads:
                    if not load.done():
                        load.set_result(None)
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(BrowserError("the DevTools connection closed"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self._ids)
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[command_id] = reply
        await self._socket.send_json({"id": command_id, "method": method, "params": params})
        payload = await asyncio.wait_for(reply, COMMAND_TIMEOUT)
        if "error" in payload:
            raise BrowserError(f"{method}: {payload['error']}")
        result: dict[str, Any] = payload.get("result", {})
        return result

    def next_load(self) -> asyncio.Future[None]:
        """A future for the next ``load`` event; take it *before* causing the navigation."""
        load: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._loads.append(load)
        return load

    async def open(self, url: str) -> None:
        load = self.next_load()
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(load, COMMAND_TIMEOUT)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def type_into(self, selector: str, text: str) -> None:
        """Focus the field and type ``text`` as keyboard input would."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def click_and_wait(self, selector: str) -> None:
        """Click an element that navigates (a link, a submit button); wait for the new page."""
        load = self.next_load()
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        await asyncio.wait_for(load, COMMAND_TIMEOUT)

    async def text(self) -> str:
        return str(await self.evaluate("document.body.innerText"))

    async def url(self) -> str:
        return str(await self.evaluate("location.href"))

    async def screenshot(self) -> bytes:
        """The whole page (not only the viewport) as PNG."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = await self.send(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
        )
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        await self._socket.close()
        await self._reader


def _announced_port(marker: Path) -> int | None:
    """The port in ``DevToolsActivePort`` (first line), once Chromium has written it."""
    try:
        first_line = marker.read_text().splitlines()[:1]
    except FileNotFoundError:
        return None
    return int(first_line[0]) if first_line and first_line[0].isdigit() else None


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process, log: Path) -> int:
    """Chromium writes its (kernel-chosen) DevTools port into the profile directory."""
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    while (port := _announced_port(profile / "DevToolsActivePort")) is None:
        if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
            raise BrowserError(f"chromium did not start:\n{_log_tail(log)}")
        await asyncio.sleep(0.1)
    return port


@contextlib.asynccontextmanager
async def browser_page() -> AsyncIterator[Page]:
    """A fresh headless Chromium (own profile, no cookies) and its first tab."""
    executable = chromium_executable()
    with tempfile.TemporaryDirectory(prefix="videoimport-chromium-") as scratch:
        profile = Path(scratch) / "profile"
        log = Path(scratch) / "chromium.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                executable,
                "--headless=new",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={profile}",
                "--no-sandbox",  # the tests may run as root, where the sandbox refuses to start
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        try:
            port = await _devtools_port(profile, process, log)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
                [target] = [t for t in targets if t["type"] == "page"][:1]
                socket = await http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
                page = Page(socket)
                try:
                    await page.send("Page.enable")
                    await page.send(
                        "Emulation.setDeviceMetricsOverride",
                        width=VIEWPORT[0],
                        height=VIEWPORT[1],
                        deviceScaleFactor=1,
                        mobile=False,
                    )
                    yield page
                finally:
                    await page.close()
        finally:
            await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Stop the browser and its helper processes (its own process group, signalled while
    the browser is not yet reaped, so the group id is still ours)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
