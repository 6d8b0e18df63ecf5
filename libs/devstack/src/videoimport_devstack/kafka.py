"""Apache Kafka: one combined broker+controller node in KRaft mode, from Maven Central jars."""

from __future__ import annotations

import base64
import importlib
import os
import re
import shutil
import signal
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from ._cache import cached_tool
from ._process import ChildProcess, Deadline, apt_install, run_command, tcp_accepts, which
from ._server import LaunchSpec, Server, file_sha256
from .errors import InstallError

KAFKA_HEAP_ENV = "VIDEOIMPORT_KAFKA_HEAP"
_NODE_ID = 1
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.coordinator.name = org.apache.kafka.coordinator
logger.coordinator.level = WARN
"""


def kafka_version(pom: Path) -> str:
    """The ``kafka.version`` property of deploy/kafka/pom.xml (single source of truth)."""
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", _POM_NS)
    if node is None or not (node.text or "").strip():
        raise InstallError(f"{pom} has no <kafka.version> property")
    return (node.text or "").strip()


def java_binary() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return which("java")


def java_major_version(java: str) -> int:
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False, timeout=60
    ).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise InstallError(f"cannot tell the version of {java}: {out.strip()}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


class KafkaServer(Server):
    name = "kafka"

    def __init__(self, data_dir: Path, cache_dir: Path, deploy_dir: Path) -> None:
        super().__init__(data_dir, cache_dir)
        self.pom = deploy_dir / "kafka" / "pom.xml"
        self.version = kafka_version(self.pom)
        # Keyed by the pom's content too: a clone with an edited pom gets jars of its own.
        self.home = cache_dir / f"kafka-{self.version}-{file_sha256(self.pom)[:12]}"
        self.libs = self.home / "libs"
        self.dir = data_dir / "kafka"
        self.port = 0
        self.controller_port = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def port_names(self) -> tuple[str, ...]:
        return ("kafka", "kafka_controller")

    # install -----------------------------------------------------------------

    def install(self) -> None:
        log = self.log_dir / "install.log"
        java = java_binary()
        if java is None:
            apt_install(["openjdk-17-jre-headless"], log_path=log, why="Kafka needs Java 17+")
            java = java_binary()
        if java is None or java_major_version(java) < 17:
            raise InstallError(f"Kafka {self.version} needs Java 17 or newer (found {java})")
        cached_tool(self.cache_dir, self.home.name, self._resolve_jars)

    def _resolve_jars(self, staging: Path) -> None:
        """Copy the pom's jars into ``staging/libs`` (Maven only runs for a cold cache)."""
        log = self.log_dir / "install.log"
        if which("mvn") is None:
            apt_install(["maven"], log_path=log, why="the Kafka jars are resolved with Maven")
        libs = staging / "libs"
        run_command(
            [
                "mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(self.pom),
                "dependency:copy-dependencies", f"-DoutputDirectory={libs}",
            ],
            log_path=log, what=f"resolving the Kafka {self.version} jars", timeout=1200,
            error=InstallError,
        )  # fmt: skip
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise InstallError(f"Maven did not copy the Kafka jars into {libs} (log: {log})")

    # storage -----------------------------------------------------------------

    def _java_cmd(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        java = java_binary()
        if java is None:
            raise InstallError("java not found: run `python -m videoimport_devstack install`")
        return [
            java, f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:-UsePerfData", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp", f"{self.libs}/*", main, *args,
        ]  # fmt: skip

    def _cluster_id(self) -> str:
        path = self.dir / "cluster.id"
        if path.is_file():
            return path.read_text().strip()
        # Same form as `kafka-storage.sh random-uuid`: URL-safe base64 of 16 random bytes,
        # never starting with "-" (the storage tool would read it as an option).
        cid = "-"
        while cid.startswith("-"):
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        path.write_text(cid + "\n")
        return cid

    def _properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(_NODE_ID),
            # A static voter set: it is read from this file at every start, so the
            # controller port may change between restarts of the same data dir.
            "controller.quorum.voters": f"{_NODE_ID}@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.dir / "kraft-logs"),
            "num.partitions": "4",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
        }
        lines = ["# Written by videoimport_devstack at every start; edits are overwritten."]
        lines += [f"{key}={value}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    def prepare(self, ports: Mapping[str, int]) -> None:
        self.port = ports["kafka"]
        self.controller_port = ports["kafka_controller"]
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "log4j2.properties").write_text(_LOG4J2)
        (self.dir / "server.properties").write_text(self._properties())
        formatted = self.dir / "formatted"
        if formatted.is_file():
            return
        # A format that did not finish leaves a half-made log dir: start it afresh.
        shutil.rmtree(self.dir / "kraft-logs", ignore_errors=True)
        run_command(
            self._java_cmd(
                "kafka.tools.StorageTool", "format",
                "--cluster-id", self._cluster_id(),
                "--config", str(self.dir / "server.properties"),
            ),
            log_path=self.log_dir / "kafka-format.log",
            what="formatting the KRaft storage", timeout=180,
        )  # fmt: skip
        formatted.write_text(self._cluster_id() + "\n")

    # run ---------------------------------------------------------------------

    def launch(self) -> LaunchSpec:
        heap = os.environ.get(KAFKA_HEAP_ENV, "768m")
        argv = self._java_cmd("kafka.Kafka", str(self.dir / "server.properties"), heap=heap)
        argv.insert(1, "-Xms128m")
        argv.insert(1, "-XX:+ExitOnOutOfMemoryError")
        return LaunchSpec(argv=argv, cwd=self.dir, stop_signal=signal.SIGTERM)

    def wait_ready(self, child: ChildProcess, deadline: Deadline) -> None:
        admin_mod = importlib.import_module("aiokafka.admin")

        async def probe() -> bool:
            # A plain TCP check first keeps aiokafka from logging connection errors.
            if not tcp_accepts(self.port):
                return False
            admin = admin_mod.AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=5000
            )
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
            finally:
                await admin.close()
            return bool(cluster.get("brokers"))

        self.poll_ready(child, deadline, probe)
