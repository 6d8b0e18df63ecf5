"""The Dockerfile builds a production image: read as text, since no engine is assumed.

Stages, a pinned uv, the dependency layer before the sources, only the runtime
members, ffmpeg for the ingester, a non-root user and a healthcheck; .dockerignore
keeps the rest out.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME_MEMBERS = {
    "libs/events",
    "libs/eventlog",
    "libs/projects",
    "services/api",
    "services/ingester",
    "services/relay",
    "services/projector",
    "services/notifier",
}


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def stages() -> list[Stage]:
    text = (REPO / "Dockerfile").read_text()
    # Continuation lines joined, comments dropped: one instruction per line.
    lines = re.sub(r"\\\n", " ", text).splitlines()
    instructions = [line.split(None, 1) for line in lines if line.strip()]
    parsed: list[Stage] = []
    for keyword, *rest in instructions:
        if keyword.startswith("#"):
            continue
        args = rest[0] if rest else ""
        if keyword.upper() == "FROM":
            base, _, name = args.partition(" AS ")
            parsed.append(Stage(base.strip(), name.strip()))
        elif parsed:
            parsed[-1].instructions.append((keyword.upper(), args))
    return parsed


def by_name(name: str) -> Stage:
    return next(stage for stage in stages() if stage.name == name)


def test_multi_stage_with_a_pinned_uv() -> None:
    names = [stage.name for stage in stages()]
    assert names[-1] == "runtime" and len(names) >= 3, names
    uv = by_name("uv")
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", uv.base), uv.base
    # The version the repository's lock is maintained with.
    local = subprocess.run(["uv", "--version"], capture_output=True, text=True, check=True)
    assert uv.base.rsplit(":", 1)[1] == local.stdout.split()[1]
    build = by_name("build")
    assert any("--from=uv" in args for args in build.all("COPY"))
    assert not any("pip install" in args for args in build.all("RUN"))


def test_the_python_image_is_pinned_to_a_patch_release() -> None:
    text = (REPO / "Dockerfile").read_text()
    image = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert image and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image.group(1))
    assert {by_name("build").base, by_name("runtime").base} == {"${PYTHON_IMAGE}"}


def test_dependencies_are_installed_before_the_sources_are_copied() -> None:
    build = by_name("build").instructions
    syncs = [i for i, (kw, args) in enumerate(build) if kw == "RUN" and "uv sync" in args]
    assert len(syncs) == 2
    first, second = (build[i][1] for i in syncs)
    assert "--frozen" in first and "--no-dev" in first and "--no-install-workspace" in first
    assert "--frozen" in second and "--no-dev" in second and "--no-editable" in second
    # What the context brings before the first sync (uv's binary comes from its stage).
    before = [args for kw, args in build[: syncs[0]] if kw == "COPY" and "--from" not in args]
    sources = [source for args in before for source in args.split()[:-1]]
    assert sources and all(s.endswith(("pyproject.toml", "uv.lock")) for s in sources), sources


def test_only_the_runtime_members_are_built_and_shipped() -> None:
    build = by_name("build")
    sources = {args.split()[0].removesuffix("/src") for args in build.all("COPY") if "/src" in args}
    assert sources == RUNTIME_MEMBERS
    packages = re.search(r'RUNTIME_PACKAGES="([^"]+)"', "\n".join(build.all("ARG")))
    assert packages, "the synced packages are named"
    synced = set(re.findall(r"--package (\S+)", packages.group(1)))
    assert synced == {"videoimport-" + member.split("/")[1] for member in RUNTIME_MEMBERS} - {
        "videoimport-events",
        "videoimport-eventlog",
        "videoimport-projects",
    }  # the libs come as their dependencies
    runtime = by_name("runtime")
    assert runtime.all("COPY") == ["--from=build /opt/venv /opt/venv"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "devstack/src" not in dockerfile and "benchmarks" not in dockerfile


def test_the_runtime_has_ffmpeg_without_recommends_or_package_lists() -> None:
    (install,) = [args for args in by_name("runtime").all("RUN") if "apt-get" in args]
    assert "apt-get install -y --no-install-recommends ffmpeg" in install
    assert install.rstrip().endswith("rm -rf /var/lib/apt/lists/*")


def test_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    runtime = by_name("runtime")
    users = runtime.all("USER")
    assert users and users[-1] not in {"root", "0", "0:0"}
    assert any(users[-1].split(":")[0] in args for args in runtime.all("RUN"))
    (healthcheck,) = runtime.all("HEALTHCHECK")
    assert "/health/ready" in healthcheck and "VIDEOIMPORT_HEALTH_PORT" in healthcheck
    assert runtime.all("CMD") == ['["python", "-m", "videoimport_api"]']


def test_dockerignore_admits_only_manifests_and_runtime_sources() -> None:
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*", "an allow-list"
    admitted = {rule[1:] for rule in rules if rule.startswith("!")}
    assert not any(
        word in rule for rule in admitted for word in ("devstack", "tests", "bench", ".data")
    )
    assert {"pyproject.toml", "uv.lock", "libs/*/pyproject.toml", "services/*/src"} <= admitted
