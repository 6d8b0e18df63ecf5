"""``POST …/import/videos?dryRun=true``: what an import would do, without importing.

The body was validated exactly as for an import. Then: the project's config and
the batch's registry rows (one read of the ingester's ``media`` table), the
ingester's decision per video, a probe of every distinct URL the import would
download (``adapters.url_probe``), and the answer (``domain.dry_run``). Nothing
is written: not to the log, not to any table.
"""

from __future__ import annotations

from typing import Any

import structlog
from videoimport_projects import TokenGrant, project_config

from videoimport_api.adapters.registry import registered_media
from videoimport_api.domain import dry_run as plan
from videoimport_api.domain.validation import ImportCommand
from videoimport_api.handlers import Dependencies

log = structlog.get_logger("videoimport_api")


async def dry_run(deps: Dependencies, grant: TokenGrant, command: ImportCommand) -> dict[str, Any]:
    videos = plan.requested_videos(grant.project, command)
    async with deps.pool.acquire() as conn:
        config = await project_config(conn, grant.project)
        registered = await registered_media(
            conn, grant.project, command.system_name, [v.external_id for v in videos]
        )
    decided = plan.decisions(videos, config, registered)
    urls = plan.urls_to_probe(videos, decided)
    probes = await deps.url_probe.probe_all(urls)
    answer = plan.dry_run_answer(videos, decided, probes, deps.max_video_bytes)
    log.info(
        "dry run", project=grant.project, videos=len(videos), probed=len(urls), **answer["summary"]
    )
    return answer
