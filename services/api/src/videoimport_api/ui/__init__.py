"""The read-only operator page at ``/ui``.

(To be built.)
"""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler
from litestar.template import TemplateConfig

from videoimport_api.handlers import Dependencies


def ui_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    return []


def template_config() -> TemplateConfig | None:  # type: ignore[type-arg]
    return None
