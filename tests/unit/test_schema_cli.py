"""``callstream schemas export``: writes, checks, and refuses breaking changes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from callstream.schemas import export
from callstream.schemas.cli import add_schemas_cli
from callstream.schemas.export import SCHEMA_DIR, render


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_schemas_cli(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(["schemas", *argv])
    code: int = args.func(args)
    return code


def test_export_writes_every_file_then_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("export", "--out", str(tmp_path)) == 0
    files = render()
    assert {(tmp_path / p).read_text() for p in files} == set(files.values())
    assert len(capsys.readouterr().out.splitlines()) == len(files)
    assert run("export", "--out", str(tmp_path), "--check") == 0
    assert run("export", "--out", str(tmp_path)) == 0
    assert capsys.readouterr().out == ""


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    run("export", "--out", str(tmp_path))
    path = tmp_path / "docs" / "asyncapi.yaml"
    path.write_text("stale\n")
    assert run("export", "--out", str(tmp_path), "--check") == 1
    assert path.read_text() == "stale\n"


def test_a_breaking_change_is_refused_unless_allowed(tmp_path: Path) -> None:
    run("export", "--out", str(tmp_path))
    path = tmp_path / SCHEMA_DIR / "omicall.cdrs.schema.json"
    old = json.loads(path.read_text())
    old["$defs"]["CallDetailRecord"]["properties"]["gone"] = {"type": "string"}
    path.write_text(json.dumps(old))
    assert run("export", "--out", str(tmp_path)) == 1
    assert "gone" in path.read_text()
    assert run("export", "--out", str(tmp_path), "--allow-breaking") == 0
    assert "gone" not in path.read_text()


def test_export_without_out_writes_into_the_checkout_holding_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "schemas").mkdir(parents=True)
    (checkout / "schemas" / "topics.py").write_text("")
    (checkout / "pyproject.toml").write_text('[project]\nname = "callstream"\n')
    (checkout / "docs").mkdir()
    monkeypatch.chdir(checkout / "docs")
    assert run("export") == 0
    assert (checkout / "docs" / "asyncapi.yaml").is_file()
    assert {p.name for p in (checkout / SCHEMA_DIR).iterdir()} == {
        p.name for p in render() if p.parent == SCHEMA_DIR
    }


def test_export_outside_a_checkout_writes_nothing_and_asks_for_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As from an installed package: the working directory is no checkout, and the module's own
    # location (site-packages there) must not be the default.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "topics.py").write_text("")
    monkeypatch.chdir(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in Path(export.__file__).parent.rglob("*")}
    assert run("export") == 2
    assert "--out" in capsys.readouterr().err
    assert sorted(tmp_path.rglob("*.json")) == []
    assert {p: p.stat().st_mtime_ns for p in Path(export.__file__).parent.rglob("*")} == before
