"""The operator page in a real (headless) browser against every service.

A job with one good and one failing video and a webhook runs to the end; then Chromium
signs in with the project's token, opens the job and reads its videos, the failure
code, the webhook attempt and the event timeline. Without the cookie a page lands on
the sign-in form. The page's screenshot goes to the test's tmp dir, and to
``docs/img/operator-job.png`` with ``VIDEOIMPORT_WRITE_SCREENSHOTS=1`` (``make
screenshots``).
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from .browser_harness import Page, browser_page, chromium_executable
from .conftest import REPO, ClientSide, Deployment
from .test_import_flow import post_batch, video, wait_finished
from .test_webhook_redelivery import webhook_with

pytestmark = pytest.mark.e2e

SCREENSHOT = REPO / "docs" / "img" / "operator-job.png"
COOKIE = "videoimport_ui"


@pytest.fixture(scope="module")
async def finished_job(deployment: Deployment, client_side: ClientSide) -> str:
    """A finished job (one success, one not_a_video) whose webhook was delivered."""
    chromium_executable()  # fail at once, with the fix, when the browser is missing
    body = {
        "systemName": "operator-ui",
        "webhook": client_side.url("/webhooks"),
        "context": {"myIdentifier": "ui"},
        "videos": [
            video(client_side, "ui-good", "sample.mp4"),
            {
                "url": client_side.url("/html-as-mp4"),
                "id": "ui-bad",
                "fileName": "page",
                "metadata": {"title": "not a video"},
            },
        ],
    }
    async with aiohttp.ClientSession() as http:
        job_id = await post_batch(http, deployment, body)
        status = await wait_finished(http, deployment, job_id)
        assert [v["state"] for v in status["videos"]] == ["success", "failed"]
        await webhook_with(http, deployment, job_id, 1)
    return job_id


async def sign_in(page: Page, deployment: Deployment) -> None:
    await page.type_into("#token", deployment.token)
    await page.click_and_wait("form.sign-in button[type=submit]")


async def test_an_operator_signs_in_and_reads_a_finished_job(
    deployment: Deployment, finished_job: str, tmp_path: Path
) -> None:
    job_url = f"{deployment.api_url}/ui/jobs/{finished_job}"
    async with browser_page() as page:
        await page.open(job_url)
        assert await page.url() == f"{deployment.api_url}/ui"
        assert "API token" in await page.text()

        await sign_in(page, deployment)
        assert await page.url() == f"{deployment.api_url}/ui/jobs"
        listing = await page.text()
        assert finished_job in listing and "operator-ui" in listing

        await page.click_and_wait(f'a[href="/ui/jobs/{finished_job}"]')
        assert await page.url() == job_url
        text = await page.text()
        for expected in ("ui-good", "ui-bad", "not_a_video", "success", "failed"):
            assert expected in text, f"{expected!r} not on the job page:\n{text}"
        assert "WebhookDelivered" in text and "delivered\t204" in text, text
        assert "JobCompleted" in text and "ImportRequested" in text, text

        screenshot = await page.screenshot()
        (tmp_path / "operator-job.png").write_bytes(screenshot)
        if os.environ.get("VIDEOIMPORT_WRITE_SCREENSHOTS") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.write_bytes(screenshot)

        await page.click_and_wait("header form button[type=submit]")
        assert await page.url() == f"{deployment.api_url}/ui"
        await page.open(job_url)
        assert await page.url() == f"{deployment.api_url}/ui", "signed out, yet the job shows"


async def test_the_pages_are_locked_down(deployment: Deployment, finished_job: str) -> None:
    base = deployment.api_url
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(f"{base}/ui") as response:
            assert response.status == 200
            csp = response.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "script-src 'none'" in csp
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers["Referrer-Policy"] == "no-referrer"

        async with http.get(f"{base}/ui/jobs/{finished_job}", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/ui"

        login = f"{base}/ui/login"
        async with http.post(login, data={"token": "vit_not-a-token"}) as response:
            assert response.status == 401
            assert "unknown, revoked or expired token" in await response.text()
        async with http.post(
            login, data={"token": deployment.token}, headers={"Origin": "https://evil.example"}
        ) as response:
            assert response.status == 403
        async with http.post(
            login, data={"token": deployment.token}, headers={"Sec-Fetch-Site": "cross-site"}
        ) as response:
            assert response.status == 403
        async with http.post(login, data={"token": "x" * 5000}) as response:
            assert response.status == 413

        async with http.post(
            login, data={"token": deployment.token}, allow_redirects=False
        ) as response:
            assert response.status == 303 and response.headers["Location"] == "/ui/jobs"
            assert response.headers["Cache-Control"] == "no-store"
            cookie = response.headers["Set-Cookie"]
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert f"{COOKIE}={deployment.token}".lower() in attributes
        assert {"httponly", "samesite=strict", "path=/ui"} <= attributes
        assert "secure" not in attributes  # served over plain http here

        mine = {"Cookie": f"{COOKIE}={deployment.token}"}
        theirs = {"Cookie": f"{COOKIE}={deployment.other_token}"}
        async with http.get(f"{base}/ui/jobs/{finished_job}", headers=mine) as response:
            assert response.status == 200
        async with http.get(f"{base}/ui/jobs/{finished_job}", headers=theirs) as response:
            assert response.status == 404  # another project's job does not exist for them
        async with http.get(f"{base}/ui/jobs", headers=theirs) as response:
            assert response.status == 200 and finished_job not in await response.text()
        async with http.get(f"{base}/ui/jobs?cursor=%3Cscript%3E", headers=mine) as response:
            assert response.status == 400
