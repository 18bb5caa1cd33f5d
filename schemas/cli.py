"""The ``callstream schemas`` verbs; :func:`add_schemas_cli` registers them on the main parser."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_schemas_export(args: argparse.Namespace) -> int:
    """Regenerate schemas/json/*.schema.json and docs/asyncapi.yaml under ``--out``."""
    from callstream.schemas import export

    out: Path | None = args.out or export.find_checkout(Path.cwd())
    if out is None:
        print(
            "callstream: not inside a callstream checkout: run this from one, or pass --out DIR",
            file=sys.stderr,
        )
        return 2
    files = export.render()
    if found := export.breaking(files, out):
        for path, changes in found.items():
            for change in changes:
                print(f"callstream: breaking change in {path}: {change}", file=sys.stderr)
        if not args.allow_breaking:
            print(
                "callstream: publish the change on a new topic (name ending .v2, version 2) "
                "or pass --allow-breaking for a topic nobody reads yet",
                file=sys.stderr,
            )
            return 1
    if args.check:
        changed = export.stale(files, out)
        for path in changed:
            print(f"callstream: {path} is out of date", file=sys.stderr)
        return 1 if changed else 0
    for path in export.write(files, out):
        print(out / path)
    return 0


def add_schemas_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``schemas export [--out DIR] [--check] [--allow-breaking]`` to ``subparsers``."""
    schemas = subparsers.add_parser("schemas", help="the topics' JSON Schemas and AsyncAPI doc")
    verbs = schemas.add_subparsers(dest="schemas_verb", required=True, metavar="ACTION")
    export_parser = verbs.add_parser(
        "export", help="regenerate schemas/json/*.schema.json and docs/asyncapi.yaml"
    )
    export_parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory to write under (default: the callstream checkout holding the current "
        "directory, files in place)",
    )
    export_parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a file is out of date"
    )
    export_parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="overwrite a schema even when the change breaks its readers",
    )
    export_parser.set_defaults(func=cmd_schemas_export)
