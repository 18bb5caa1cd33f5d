"""The worker's start-up errors that the ``callstream`` command reports in one line, kept free
of faust so that the command can catch them without loading the worker."""

from __future__ import annotations


class PrivateApiMissing(RuntimeError):
    """The installed faust lacks a name the worker needs: it must not start."""
