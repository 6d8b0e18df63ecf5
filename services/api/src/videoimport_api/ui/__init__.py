"""The read-only operator page at ``/ui``: a project's jobs, one job's videos, webhook
attempts and events, for whoever holds one of the project's API tokens."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar.handlers import HTTPRouteHandler
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from videoimport_api.handlers import Dependencies
from videoimport_api.ui.routes import ui_handlers


def ui_routes(deps: Dependencies) -> list[HTTPRouteHandler]:
    return ui_handlers(deps)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over the package's ``templates``, escaping everything (all of it is client data)."""
    environment = Environment(
        loader=PackageLoader("videoimport_api.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))
