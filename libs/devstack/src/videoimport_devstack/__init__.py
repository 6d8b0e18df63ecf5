"""Local dev stack: PostgreSQL, Kafka (KRaft) and an S3 server as local processes.

    from videoimport_devstack import LocalStack

    with LocalStack(Path(".data")) as stack:
        print(stack.info.postgres_dsn, stack.info.kafka_bootstrap, stack.info.s3_endpoint)

CLI: ``python -m videoimport_devstack up`` / ``install`` / ``info``. See README.md.
"""

from .errors import DevStackError, InstallError, ServerStartError, StackNotRunningError
from .info import StackInfo, read_stack_info
from .stack import LocalStack

__all__ = [
    "DevStackError",
    "InstallError",
    "LocalStack",
    "ServerStartError",
    "StackInfo",
    "StackNotRunningError",
    "read_stack_info",
]
