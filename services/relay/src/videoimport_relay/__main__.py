"""``python -m videoimport_relay``: publish the event log to Kafka until SIGTERM."""

from __future__ import annotations

from videoimport_eventlog import runtime

from videoimport_relay.service import Relay
from videoimport_relay.settings import load


def main() -> None:
    settings = load()
    runtime.configure_logging(settings.log_json, settings.log_level)
    runtime.serve_metrics(settings.metrics_port)
    runtime.run_until_signalled(Relay(settings).run)


if __name__ == "__main__":
    main()
