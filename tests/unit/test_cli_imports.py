"""The ``callstream`` command loads only what its verb runs: building the parser imports none of
the heavy libraries, so `callstream ingest` does not carry the worker's faust, nor the worker
the export's duckdb or the traffic commands' rich."""

from __future__ import annotations

import argparse
import subprocess
import sys

from callstream.cli import build_parser

HEAVY = ("faust", "duckdb", "rich", "aiohttp", "aiokafka", "tqdm")
VERBS = {
    "kafka",
    "up",
    "ingest",
    "worker",
    "schemas",
    "simulate",
    "replay",
    "capture",
    "export",
}


def test_building_the_parser_imports_no_heavy_library() -> None:
    """In a fresh interpreter: this one's sys.modules holds whatever other tests imported."""
    script = (
        "import sys\n"
        "from callstream.cli import build_parser\n"
        "build_parser()\n"
        f"heavy = {HEAVY!r}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == [], f"imported by callstream.cli: {done.stdout.strip()}"


def test_the_parser_still_has_every_verb() -> None:
    parser = build_parser()
    [verbs] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(verbs.choices) == VERBS
    for name, sub in verbs.choices.items():
        if name not in {"kafka", "schemas"}:  # those two have actions of their own
            assert callable(sub.get_default("func")), name
