"""Per-project webhook secrets end to end through the notifier, verified the way a
receiver does it: with the ``standardwebhooks`` package, not with our own code."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from videoimport_devstack import StackInfo
from videoimport_eventlog import schema
from videoimport_events import WebhookDeliveryFailed
from videoimport_notifier import domain
from videoimport_projects import ProjectConfig, create_project, webhook_secrets

from tests.integration.notifier_harness import (
    DEADLINE,
    Receiver,
    attempts,
    delivery_row,
    jobs_topic,
    log_job_completed,
    notifying,
    publish,
    serving,
    settings_for,
)
from tests.integration.test_cli_tokens import videoimport
from tests.polling import eventually

pytestmark = pytest.mark.integration
RELEASE_0_1 = Path(__file__).resolve().parents[1] / "fixtures" / "schema" / "release-0.1.sql"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with serving({"/{tail:.*}": rec.handle}) as base:
        rec.url = f"{base}/hook"
        yield rec


def request_for(receiver: Receiver, job_id: str) -> tuple[dict[str, str], bytes]:
    """The last webhook the receiver got for ``job_id`` (the path names the job)."""
    found = [(h, b) for path, h, b in receiver.requests if path == f"/hook/{job_id}"]
    assert found, f"no webhook for {job_id}"
    return found[-1]


async def delivered(conn: asyncpg.Connection, job_id: str) -> bool:
    row = await delivery_row(conn, job_id)
    return row is not None and row["state"] == "delivered"


def verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


async def cli_secret(*args: str, dsn: str) -> str:
    """The secret ``videoimport webhook-secret ...`` prints: checked to be all it prints."""
    code, out, err = await videoimport("webhook-secret", *args, dsn=dsn)
    assert code == 0, err
    assert out.endswith("\n") and out.count("\n") == 1, out
    secret = out.strip()
    assert secret.startswith("whsec_")
    return secret


async def test_each_project_signs_with_its_own_secret(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    for name in ("alpha", "beta"):
        await create_project(conn, name, ProjectConfig())
    alpha = await cli_secret("show", "--project", "alpha", dsn=pg_dsn)
    beta = await cli_secret("show", "--project", "beta", dsn=pg_dsn)
    assert alpha != beta
    settings = settings_for(stack, pg_dsn, topic_prefix)
    jobs = {
        "jobalpha0001": await log_job_completed(
            conn, "jobalpha0001", f"{receiver.url}/jobalpha0001", project="alpha"
        ),
        "jobbeta00001": await log_job_completed(
            conn, "jobbeta00001", f"{receiver.url}/jobbeta00001", project="beta"
        ),
    }
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), *jobs.values())
        for job_id in jobs:
            await eventually(lambda j=job_id: delivered(conn, j), f"{job_id} delivered")

    alpha_headers, alpha_body = request_for(receiver, "jobalpha0001")
    beta_headers, beta_body = request_for(receiver, "jobbeta00001")
    Webhook(alpha).verify(alpha_body, alpha_headers)
    Webhook(beta).verify(beta_body, beta_headers)
    # A receiver that can verify its own webhooks cannot accept another project's.
    with pytest.raises(WebhookVerificationError):
        Webhook(beta).verify(alpha_body, alpha_headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(alpha).verify(beta_body, beta_headers)
    assert len(alpha_headers["webhook-signature"].split(" ")) == 1


async def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    await create_project(conn, "acme", ProjectConfig())
    old = await cli_secret("show", "--project", "acme", dsn=pg_dsn)
    new = await cli_secret("rotate", "--project", "acme", dsn=pg_dsn)
    assert new != old
    assert await cli_secret("show", "--project", "acme", dsn=pg_dsn) == new
    settings = settings_for(stack, pg_dsn, topic_prefix)
    async with notifying(settings):
        during = await log_job_completed(conn, "jobduring001", f"{receiver.url}/jobduring001")
        await publish(stack, jobs_topic(settings), during)
        await eventually(lambda: delivered(conn, "jobduring001"), "the webhook in the overlap")
        headers, body = request_for(receiver, "jobduring001")
        assert len(headers["webhook-signature"].split(" ")) == 2
        assert verifies(old, headers, body) and verifies(new, headers, body)

        # 24 hours pass: the old secret's expiry moves into the past, as time would.
        moved = await conn.execute(
            "UPDATE project_webhook_secrets SET expires_at = now() - interval '1 second'"
            " WHERE project = 'acme' AND expires_at IS NOT NULL"
        )
        assert moved == "UPDATE 1"
        after = await log_job_completed(conn, "jobafter0001", f"{receiver.url}/jobafter0001")
        await publish(stack, jobs_topic(settings), after)
        await eventually(lambda: delivered(conn, "jobafter0001"), "the webhook after the overlap")
    headers, body = request_for(receiver, "jobafter0001")
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert verifies(new, headers, body)
    assert not verifies(old, headers, body)


async def test_a_project_of_an_older_release_gets_a_secret_before_its_first_webhook(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    # Created as the previous release's `project create` did: no secret.
    await conn.execute("INSERT INTO projects (name, config) VALUES ('acme', '{}')")
    assert await webhook_secrets.valid_secrets(conn, "acme") == []
    settings = settings_for(stack, pg_dsn, topic_prefix)
    completed = await log_job_completed(conn, "joblegacy001", f"{receiver.url}/joblegacy001")
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)
        await eventually(lambda: delivered(conn, "joblegacy001"), "the webhook")
    [created] = await webhook_secrets.valid_secrets(conn, "acme")
    headers, body = request_for(receiver, "joblegacy001")
    secret = await cli_secret("show", "--project", "acme", dsn=pg_dsn)
    assert secret == created.secret
    assert verifies(secret, headers, body)


async def test_a_webhook_that_cannot_be_signed_is_never_sent(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    # No such project (so no secret can be made for it): each attempt is recorded
    # as failed without a request, on the retry schedule, until it gives up.
    completed = await log_job_completed(conn, "jobghost0001", receiver.url, project="ghost")
    settings = settings_for(stack, pg_dsn, topic_prefix)
    async with notifying(settings):
        await publish(stack, jobs_topic(settings), completed)

        async def given_up() -> bool:
            row = await delivery_row(conn, "jobghost0001")
            return row is not None and row["state"] == "failed"

        await eventually(given_up, "the delivery to give up")
    assert receiver.requests == []
    delivery_id = domain.delivery_id_for(str(completed.event_id))
    events = [e.event for e in await attempts(conn, delivery_id)]
    assert len(events) == settings.webhook_max_attempts
    for event in events:
        assert isinstance(event, WebhookDeliveryFailed)
        assert (event.error, event.status_code) == (domain.NO_SECRET, None)


async def test_a_project_from_before_the_migration_has_a_strong_secret(pg_dsn: str) -> None:
    loader = await asyncpg.connect(pg_dsn)
    try:
        await loader.execute(RELEASE_0_1.read_text())
    finally:
        await loader.close()
    conn = await asyncpg.connect(pg_dsn)
    try:
        await schema.migrate(conn)
        [secret] = await webhook_secrets.valid_secrets(conn, "legacy")
        assert secret.expires_at is None
        key = webhook_secrets.secret_key(secret.secret)
        assert len(key) == 32
        assert base64.b64encode(key).decode() == secret.secret.removeprefix("whsec_")
    finally:
        await conn.close()
    code, out, err = await videoimport("webhook-secret", "show", "--project", "legacy", dsn=pg_dsn)
    assert (code, out.strip()) == (0, secret.secret), err


async def test_the_table_refuses_short_and_malformed_secrets(conn: asyncpg.Connection) -> None:
    await create_project(conn, "acme", ProjectConfig())
    insert = (
        "INSERT INTO project_webhook_secrets (project, secret, expires_at) VALUES ($1, $2, now())"
    )
    short = "whsec_" + base64.b64encode(b"k" * 23).decode()
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(insert, "acme", short)
    for bad in ("whsec_", "plain", "whsec_not base64!"):
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute(insert, "acme", bad)
    # One current secret (no expiry) per project.
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO project_webhook_secrets (project, secret) VALUES ($1, $2)",
            "acme",
            webhook_secrets.new_secret(),
        )


async def test_concurrent_first_uses_agree_on_one_secret(pg_dsn: str) -> None:
    """Several notifiers meeting a project without a secret at once create one."""
    admin = await asyncpg.connect(pg_dsn)
    await schema.migrate(admin)
    await admin.execute("INSERT INTO projects (name, config) VALUES ('racy', '{}')")
    others = [await asyncpg.connect(pg_dsn) for _ in range(4)]
    try:
        made = await asyncio.gather(*(webhook_secrets.ensure_secret(c, "racy") for c in others))
        assert len({m.secret for m in made}) == 1
        assert len(await webhook_secrets.valid_secrets(admin, "racy")) == 1
    finally:
        for c in others:
            await c.close()
        await admin.close()


async def test_the_retired_global_secret_is_ignored_and_named_in_a_warning(
    stack: StackInfo, pg_dsn: str, topic_prefix: str, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    await create_project(conn, "acme", ProjectConfig())
    retired = webhook_secrets.new_secret()
    settings = settings_for(stack, pg_dsn, topic_prefix)
    env = {
        **os.environ,
        "VIDEOIMPORT_DATABASE_URL": pg_dsn,
        "VIDEOIMPORT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "VIDEOIMPORT_TOPIC_PREFIX": topic_prefix,
        "VIDEOIMPORT_TOPIC_PARTITIONS": "1",
        "VIDEOIMPORT_ALLOW_PRIVATE_URLS": "true",
        "VIDEOIMPORT_WEBHOOK_SECRET": retired,
        "VIDEOIMPORT_SCHEDULER_POLL_INTERVAL": "0.1",
    }
    completed = await log_job_completed(conn, "jobretired01", f"{receiver.url}/jobretired01")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "videoimport_notifier", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await publish(stack, jobs_topic(settings), completed)
        await eventually(lambda: delivered(conn, "jobretired01"), "the webhook")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode == 0, stderr.decode()
    log = stderr.decode()
    assert "VIDEOIMPORT_WEBHOOK_SECRET" in log
    assert retired not in log and retired.removeprefix("whsec_") not in log
    headers, body = request_for(receiver, "jobretired01")
    assert not verifies(retired, headers, body)
    assert verifies(await cli_secret("show", "--project", "acme", dsn=pg_dsn), headers, body)
    # No secret of any project reaches the log either.
    for row in await conn.fetch("SELECT secret FROM project_webhook_secrets"):
        assert row["secret"].removeprefix("whsec_") not in log
