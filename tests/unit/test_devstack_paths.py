"""Where the tools are cached (per user, shared by clones), and how an entry gets there."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from videoimport_devstack._cache import COMPLETE_MARKER, cached_tool, link
from videoimport_devstack.paths import cache_dir_for

HOME = Path("/home/someone")


def test_the_cache_is_per_user_by_default() -> None:
    assert cache_dir_for({}, HOME) == HOME / ".cache" / "videoimport"


def test_xdg_cache_home_moves_it() -> None:
    assert cache_dir_for({"XDG_CACHE_HOME": "/var/cache/me"}, HOME) == Path(
        "/var/cache/me/videoimport"
    )


def test_videoimport_cache_dir_wins_over_xdg(tmp_path: Path) -> None:
    environ = {"VIDEOIMPORT_CACHE_DIR": str(tmp_path / "tools"), "XDG_CACHE_HOME": "/var/c"}
    assert cache_dir_for(environ, HOME) == tmp_path / "tools"


def test_a_relative_cache_dir_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cache_dir_for({"VIDEOIMPORT_CACHE_DIR": "tools"}, HOME) == tmp_path.resolve() / "tools"


@pytest.mark.parametrize(
    "environ",
    [
        {"VIDEOIMPORT_CACHE_DIR": "", "XDG_CACHE_HOME": ""},
        # The XDG base directory spec: a relative path is invalid and ignored.
        {"XDG_CACHE_HOME": "relative/cache"},
    ],
)
def test_empty_or_relative_settings_count_as_unset(environ: dict[str, str]) -> None:
    assert cache_dir_for(environ, HOME) == HOME / ".cache" / "videoimport"


def write_tool(staging: Path) -> None:
    (staging / "tool").write_text("built")


def test_an_entry_is_built_once_and_then_reused(tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(staging: Path) -> None:
        builds.append(staging)
        write_tool(staging)

    first = cached_tool(tmp_path, "tool-1.0", build)
    again = cached_tool(tmp_path, "tool-1.0", build)
    assert first == again == tmp_path / "tool-1.0"
    assert len(builds) == 1
    assert (first / "tool").read_text() == "built"
    assert (first / COMPLETE_MARKER).is_file()


def test_a_failed_build_leaves_no_entry_and_the_next_one_builds_again(tmp_path: Path) -> None:
    def broken(staging: Path) -> None:
        write_tool(staging)
        raise RuntimeError("download failed")

    with pytest.raises(RuntimeError):
        cached_tool(tmp_path, "tool-1.0", broken)
    assert not (tmp_path / "tool-1.0").exists()
    assert not list(tmp_path.glob(".tool-1.0.partial-*"))
    assert (cached_tool(tmp_path, "tool-1.0", write_tool) / "tool").is_file()


def test_what_a_killed_install_left_is_not_taken_as_complete(tmp_path: Path) -> None:
    # Killed while building (a staging dir), and an entry without its marker.
    (tmp_path / ".tool-1.0.partial-abc").mkdir()
    (tmp_path / "tool-1.0").mkdir()
    (tmp_path / "tool-1.0" / "half").write_text("")

    entry = cached_tool(tmp_path, "tool-1.0", write_tool)

    assert sorted(p.name for p in entry.iterdir()) == [COMPLETE_MARKER, "tool"]
    assert not (tmp_path / ".tool-1.0.partial-abc").exists()


def test_concurrent_installs_build_once(tmp_path: Path) -> None:
    builds: list[str] = []
    started = threading.Barrier(4)

    def build(staging: Path) -> None:
        builds.append(staging.name)
        write_tool(staging)

    def install() -> None:
        started.wait()
        cached_tool(tmp_path, "tool-1.0", build)

    threads = [threading.Thread(target=install) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1


def test_a_clone_links_to_the_entry_replacing_an_old_directory(tmp_path: Path) -> None:
    entry = cached_tool(tmp_path / "cache", "mods-1.0", write_tool)
    in_clone = tmp_path / "clone" / "node_modules"
    in_clone.mkdir(parents=True)
    (in_clone / "stale").write_text("")

    link(in_clone, entry)
    link(in_clone, entry)

    assert in_clone.is_symlink()
    assert in_clone.resolve() == entry.resolve()
    assert sorted(p.name for p in in_clone.parent.iterdir()) == ["node_modules"]
