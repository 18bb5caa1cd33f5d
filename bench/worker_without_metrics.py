"""``callstream worker`` with its metrics left out, for bench/processors.py: what the call-state
fold, its table and its outputs cost alone, over the same records, to set the metrics' cost
against. Bench code only: no setting of the worker turns its metrics off.

    python -m bench.worker_without_metrics [worker options]
"""

from __future__ import annotations

import sys
from typing import Any

from callstream.cli import main
from callstream.processors import sink

_with_metrics = sink.StepSink.__init__


def _without_metrics(self: sink.StepSink, *args: Any, **kwargs: Any) -> None:
    _with_metrics(self, *args, **kwargs)
    self.shares = None  # no share changes: no windows, nothing on callstream.metrics


if __name__ == "__main__":
    sink.StepSink.__init__ = _without_metrics  # type: ignore[method-assign]
    raise SystemExit(main(["worker", *sys.argv[1:]]))
