"""Tools installed once per machine into the per-user cache, safely under concurrency.

Every tool lives in ``<cache>/<name>/``, where the name says what it is (``kafka-4.1.1-…``,
``compose-v2.32.4``, ``s3rver-…``), so clones that want the same tool share it and clones
that want another one (an edited pom or lock file) get their own. An entry is built in a
private staging dir under a per-entry file lock, gets its ``.complete`` marker last and is
then renamed into place: a killed install leaves no entry (only a staging dir, removed by
the next install), and a second clone installing at the same time waits for the lock and
then finds the entry complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ._process import run_command
from ._server import file_sha256
from .errors import InstallError

COMPLETE_MARKER = ".complete"


def is_complete(entry: Path) -> bool:
    return (entry / COMPLETE_MARKER).is_file()


@contextlib.contextmanager
def entry_lock(cache_dir: Path, name: str) -> Iterator[None]:
    """Held while one process installs ``name`` (or links a clone to it)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached_tool(cache_dir: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``<cache_dir>/<name>``, made by ``build(staging_dir)`` unless already complete.

    Quick (no lock) when the entry is complete; ``build`` fills an empty directory that
    becomes the entry only once it returned.
    """
    entry = cache_dir / name
    if is_complete(entry):
        return entry
    with entry_lock(cache_dir, name):
        if is_complete(entry):  # another process finished it while we waited
            return entry
        # Nobody else builds this entry while we hold the lock: what is left over is
        # from an install that was killed.
        for leftover in cache_dir.glob(f".{name}.partial-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(entry, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=cache_dir))
        try:
            build(staging)
            (staging / COMPLETE_MARKER).write_text(name + "\n")
            staging.rename(entry)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return entry


def points_to(path: Path, target: Path) -> bool:
    return path.is_symlink() and Path(os.readlink(path)) == target


def link(path: Path, target: Path) -> None:
    """Make ``path`` a symlink to ``target``, replacing whatever is there.

    The new link is renamed over the old one, so a reader sees the old or the new one,
    never nothing; a real directory (left by an install from before the cache) is moved
    aside first and removed afterwards.
    """
    if points_to(path, target):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.{os.getpid()}.link")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(target, target_is_directory=target.is_dir())
    old: Path | None = None
    if path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        path.rename(old)
    os.replace(fresh, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def npm_tool(
    cache_dir: Path,
    app_dir: Path,
    *,
    package: str,
    npm_args: list[str],
    env: dict[str, str],
    log_path: Path,
) -> Path:
    """Install ``app_dir``'s locked npm dependencies once per machine; returns the entry.

    The entry is named after ``package``'s pinned version and keyed by package.json +
    package-lock.json (``s3rver-3.7.1-<sha256 prefix>``); ``npm ci`` runs in it, and
    ``<app_dir>/node_modules`` becomes a symlink to its ``node_modules``: Node resolves
    ``require``/``import`` from the script's directory, so the scripts stay where they are.
    """
    manifests = (app_dir / "package.json", app_dir / "package-lock.json")
    pinned = json.loads(manifests[0].read_text()).get("dependencies", {}).get(package, "")
    readable = package.lstrip("@").replace("/", "-")
    name = f"{readable}-{pinned}-{file_sha256(*manifests)[:12]}"

    def build(staging: Path) -> None:
        for manifest in manifests:
            shutil.copy2(manifest, staging / manifest.name)
        # `npm ci` installs exactly what package-lock.json pins.
        run_command(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", *npm_args],
            log_path=log_path, what=f"npm ci ({package})", timeout=900, cwd=staging,
            env=env, error=InstallError,
        )  # fmt: skip
        if not (staging / "node_modules" / package).is_dir():
            raise InstallError(f"npm ci did not install {package} (log: {log_path})")

    entry = cached_tool(cache_dir, name, build)
    modules = entry / "node_modules"
    if not points_to(app_dir / "node_modules", modules):
        with entry_lock(cache_dir, name):  # two installs in one clone: one moves a dir aside
            link(app_dir / "node_modules", modules)
    return entry
