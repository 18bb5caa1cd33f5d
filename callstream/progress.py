"""How long-running commands report their steps: one line per step, to a callable."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def silent(_line: str) -> None:
    """A Progress that says nothing (library default; the CLI passes a printer)."""
