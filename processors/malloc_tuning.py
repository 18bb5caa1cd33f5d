"""glibc's allocator, tuned for the worker (docs/reliability.md, check 7)."""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("callstream.processors")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial threshold, kept fixed


def tune_malloc() -> bool:
    """Keep glibc's mmap threshold fixed; whether it was set (False: not glibc, nothing to do).
    glibc raises the threshold each time a mapped block is freed, so the worker's large,
    short-lived buffers (fetched and produced Kafka batches) soon came from the heap, whose
    freed pieces stay in the process: its RSS grew for most of a soak."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        log.info("no glibc mallopt: the allocator keeps its defaults")
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
