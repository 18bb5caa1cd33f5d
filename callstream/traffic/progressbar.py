"""Progress on stderr: the poster's counts while it runs and a summary table at the end
(``simulate``, ``replay``), and a bar of the records read (``capture``, ``export``).

On a terminal: a rich live line. Elsewhere (a pipe, a log file, or ``CI`` set): no control
codes, one plain line every few seconds instead, so long runs still show they progress.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from callstream.traffic.poster import PostSummary

PLAIN_INTERVAL_S = 5.0


def counts_line(summary: PostSummary) -> str:
    return (
        f"sent {summary.sent}, acked {summary.acked}, refused {summary.refused}, "
        f"retried {summary.retried}, failed {summary.failed}, {summary.rate:.1f}/s"
    )


def live_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """A live display only on a terminal, and never under CI."""
    env = os.environ if environ is None else environ
    return sys.stderr.isatty() and not env.get("CI")


def stderr_console(live: bool) -> Console:
    """Where the bars write: stderr, with control codes and colour only when ``live``."""
    return Console(stderr=True, force_terminal=live, no_color=not live, highlight=False)


class _StderrBar:
    """What both bars share: a rich ``Progress`` on stderr while ``live``, else plain lines no
    closer than ``PLAIN_INTERVAL_S``; stopped when the ``with`` block ends."""

    def __init__(self, label: str, *, live: bool | None = None) -> None:
        self.label = label
        self.live = live_wanted() if live is None else live
        self.console = stderr_console(self.live)
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = time.monotonic()

    def _start(self, *columns: ProgressColumn) -> Progress:
        self._bar = Progress(*columns, console=self.console, transient=True)
        self._bar.start()
        return self._bar

    def _plain_line_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_line < PLAIN_INTERVAL_S:
            return False
        self._last_line = now
        return True

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class ProgressBar(_StderrBar):
    """A :class:`~callstream.traffic.poster.PostProgress` for the ``traffic`` commands; use as
    a context manager, then :meth:`finish` with the final counts."""

    def __enter__(self) -> ProgressBar:
        if self.live:
            bar = self._start(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                TextColumn("{task.fields[counts]}"),
            )
            self._task = bar.add_task(self.label, total=None, counts="starting")
        return self

    def update(self, summary: PostSummary) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, counts=counts_line(summary))
        elif self._plain_line_due():
            self.console.print(f"callstream: {self.label}: {counts_line(summary)}", soft_wrap=True)

    def finish(self, summary: PostSummary, extra: Mapping[str, object] | None = None) -> None:
        """The summary table (also after Ctrl-C), with ``extra`` rows (e.g. skipped lines)."""
        title = f"{self.label}: interrupted" if summary.interrupted else self.label
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(justify="right")
        rows: dict[str, object] = {
            "sent": summary.sent,
            "acked": summary.acked,
            "refused": summary.refused,
            "retried": summary.retried,
            "failed": summary.failed,
            **(extra or {}),
            "elapsed": f"{summary.elapsed_s:.1f} s",
            "rate": f"{summary.rate:.1f} acked/s",
        }
        rows.update({f"HTTP {status}": n for status, n in sorted(summary.by_status.items())})
        for name, value in rows.items():
            table.add_row(name, str(value))
        self.console.print(table)


class ReadBar(_StderrBar):
    """A :class:`~callstream.kafka.reading.ReadProgress` for the commands that read topics: a
    bar of the records read on a terminal, a plain line every few seconds elsewhere. Use as a
    context manager; :meth:`say` prints a line without breaking the bar."""

    def __init__(self, label: str, *, live: bool | None = None) -> None:
        super().__init__(label, live=live)
        self._total = 0

    def __enter__(self) -> ReadBar:
        if self.live:
            self._start(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("records"),
                TimeRemainingColumn(),
            )
        return self

    def say(self, line: str) -> None:
        self.console.print(f"callstream: {line}", markup=False, highlight=False, soft_wrap=True)

    def begin(self, total: int, partitions: int, of: int) -> None:
        self._total = total
        self.say(f"{self.label}: {total} records in {partitions} of {of} partitions")
        if self._bar is not None:
            self._task = self._bar.add_task(self.label, total=total)

    def advance(self, done: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done)
        elif self._plain_line_due():
            self.say(f"{self.label}: {done} of {self._total} records read")
