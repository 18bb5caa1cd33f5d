"""The wheel builds with the oldest setuptools pyproject.toml allows, and carries every package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What a source checkout holds that a build must not read (caches, environments, results).
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".cache", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "results"
)


def _setuptools_floor() -> str:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    floors = [m.group(1) for r in requires if (m := re.fullmatch(r"setuptools>=([\w.]+)", r))]
    assert len(floors) == 1, f"no 'setuptools>=X' in build-system.requires: {requires}"
    return floors[0]


def test_the_wheel_builds_with_the_setuptools_floor_and_holds_every_package(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=_NOT_SOURCE)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(f"setuptools=={_setuptools_floor()}\n")
    # pip's isolated build environment reads PIP_CONSTRAINT too: the build runs on the floor.
    environ = {**os.environ, "PIP_CONSTRAINT": str(constraints)}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("callstream-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("ingest", "processors", "schemas", "kafka"):
        assert f"callstream/{package}/__init__.py" in names, package
    schemas = {Path(n).name for n in names if n.startswith("callstream/schemas/json/")}
    on_disk = {p.name for p in (REPO / "schemas" / "json").glob("*.schema.json")}
    assert on_disk, "no schema files in the checkout"
    assert schemas == on_disk
