"""The CLI's offline parts: where the database is, config files, names (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from videoimport_projects import MetadataField, ProjectConfig
from videoimport_projects.cli import CliError, check_project_name, database_url, main, read_config


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIDEOIMPORT_DATABASE_URL", raising=False)
    monkeypatch.delenv("VIDEOIMPORT_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)


def write_stack(data_dir: Path, dsn: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "stack.json").write_text(
        f'{{"postgres_dsn": "{dsn}", "kafka_bootstrap": "127.0.0.1:1", "s3_bucket": "b"}}'
    )


def test_an_explicit_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOIMPORT_DATABASE_URL", "postgresql://env/db")
    assert database_url("postgresql://flag/db") == "postgresql://flag/db"
    assert database_url(None) == "postgresql://env/db"


def test_the_local_stack_is_found_above_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stack(tmp_path / ".data", "postgresql://stack/db")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert database_url(None) == "postgresql://stack/db"


def test_the_data_dir_can_be_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_stack(tmp_path / "elsewhere", "postgresql://given/db")
    monkeypatch.setenv("VIDEOIMPORT_DATA_DIR", str(tmp_path / "elsewhere"))
    assert database_url(None) == "postgresql://given/db"


def test_no_database_at_all_is_a_clear_error() -> None:
    with pytest.raises(CliError, match="no database: pass --database-url"):
        database_url(None)


def test_configs_are_read_and_checked(tmp_path: Path) -> None:
    assert read_config(None) == ProjectConfig()
    good = tmp_path / "good.json"
    good.write_text('{"metadata": [{"handle": "title", "type": "text", "required": true}]}')
    assert read_config(str(good)).metadata == [
        MetadataField(handle="title", type="text", required=True)
    ]
    bad = tmp_path / "bad.json"
    bad.write_text('{"metadata": [{"handle": "title", "type": "video"}]}')
    with pytest.raises(CliError, match=r"metadata\[0\]\.type"):
        read_config(str(bad))
    broken = tmp_path / "broken.json"
    broken.write_text('{"metadata": [')
    with pytest.raises(CliError, match="invalid config"):
        read_config(str(broken))
    with pytest.raises(CliError, match="cannot read config"):
        read_config(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("name", ["", "-x", "has space", "a/b", "x" * 65])
def test_project_names_are_restricted(name: str) -> None:
    with pytest.raises(CliError, match="invalid project name"):
        check_project_name(name)
    assert check_project_name("news-room_2.0") == "news-room_2.0"


def test_a_bad_config_fails_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"metadata": [{"type": "text"}]}')
    # The URL points nowhere: the config error must be reported without trying it.
    code = main(
        [
            "project",
            "create",
            "p",
            "--config",
            str(bad),
            "--database-url",
            "postgresql://0.0.0.0:1/x",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("videoimport: error: invalid config")
    assert "handle" in err
    assert len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["token", "create"])
    assert caught.value.code == 2
