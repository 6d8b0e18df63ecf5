"""``POST …/import/videos?dryRun=true``: what an import would do, without importing.

(To be built.)
"""

from __future__ import annotations

from typing import Any

from videoimport_projects import TokenGrant

from videoimport_api.domain.validation import ImportCommand
from videoimport_api.handlers import Dependencies


async def dry_run(deps: Dependencies, grant: TokenGrant, command: ImportCommand) -> dict[str, Any]:
    raise NotImplementedError
