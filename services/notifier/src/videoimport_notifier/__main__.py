"""``python -m videoimport_notifier``: deliver job webhooks until SIGTERM."""

from __future__ import annotations

import os

import structlog
from videoimport_eventlog import runtime

from videoimport_notifier.service import Notifier
from videoimport_notifier.settings import load, retired_variables


def main() -> None:
    settings = load()
    runtime.configure_logging(settings.log_json, settings.log_level)
    for name, instead in retired_variables(os.environ).items():
        structlog.get_logger(__name__).warning(
            "retired setting ignored", variable=name, instead=instead
        )
    runtime.serve_metrics(settings.metrics_port)
    runtime.run_until_signalled(Notifier(settings).run)


if __name__ == "__main__":
    main()
