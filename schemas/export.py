"""``callstream schemas export``: the files generated from the models, and their writer.

:func:`render` is pure and deterministic (sorted keys, one newline at the end), so comparing its
output with the committed files is a meaningful drift check.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

from callstream import __version__
from callstream.schemas.asyncapi import asyncapi_document
from callstream.schemas.compat import breaking_changes
from callstream.schemas.schemagen import file_name, topic_schema
from callstream.schemas.topics import TOPICS, TopicSpec

SCHEMA_DIR = Path("schemas/json")
ASYNCAPI_PATH = Path("docs/asyncapi.yaml")


def find_checkout(start: Path) -> Path | None:
    """The callstream source checkout holding ``start`` (the default ``--out``), or None.

    Found from the working directory, never from this module's own path: installed, the module
    sits in site-packages, and the export would overwrite the installed package's files.
    """
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "schemas" / "topics.py").is_file() and _is_ours(directory):
            return directory
    return None


def _is_ours(directory: Path) -> bool:
    try:
        project = tomllib.loads((directory / "pyproject.toml").read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return bool(project.get("project", {}).get("name") == "callstream")


def dump_json(value: Any) -> str:
    """Deterministic JSON text for committed files."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(topics: tuple[TopicSpec, ...] = TOPICS) -> dict[Path, str]:
    """Relative path -> text of every generated file."""
    files = {SCHEMA_DIR / file_name(spec): dump_json(topic_schema(spec)) for spec in topics}
    document = asyncapi_document(topics, __version__)
    files[ASYNCAPI_PATH] = yaml.safe_dump(
        document, sort_keys=True, allow_unicode=True, width=100, default_flow_style=False
    )
    return files


def stale(files: dict[Path, str], out: Path) -> list[Path]:
    """The paths under ``out`` whose text differs from ``files`` (or that are missing)."""
    return [
        path
        for path, text in sorted(files.items())
        if not (out / path).is_file() or (out / path).read_text(encoding="utf-8") != text
    ]


def breaking(files: dict[Path, str], out: Path) -> dict[Path, list[str]]:
    """Breaking changes of each generated schema against the file of the same name under ``out``."""
    found: dict[Path, list[str]] = {}
    for path, text in sorted(files.items()):
        old = out / path
        if path.parent != SCHEMA_DIR or not old.is_file():
            continue
        if changes := breaking_changes(json.loads(old.read_text("utf-8")), json.loads(text)):
            found[path] = changes
    return found


def write(files: dict[Path, str], out: Path) -> list[Path]:
    """Write the files that changed under ``out``; return their relative paths."""
    changed = stale(files, out)
    for path in changed:
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[path], encoding="utf-8")
    return changed
