"""glibc's allocator, tuned for the worker (docs/reliability.md, check 7)."""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping

log = logging.getLogger("callstream.processors")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial threshold, kept fixed


def set_by_operator(env: Mapping[str, str]) -> bool:
    """Whether the environment already sets glibc's mmap threshold (then it is left alone)."""
    return "MALLOC_MMAP_THRESHOLD_" in env or "mmap_threshold" in env.get("GLIBC_TUNABLES", "")


def tune_malloc(env: Mapping[str, str] = os.environ) -> bool:
    """Keep glibc's mmap threshold fixed; whether it was set. glibc raises the threshold when
    a mapped block larger than it is freed (up to 32 MB), so the worker's large, short-lived
    buffers (fetched and produced Kafka batches) soon came from the heap, whose freed pieces
    stay in the process: its RSS grew for most of a soak."""
    if set_by_operator(env):
        log.info("glibc's mmap threshold is set in the environment: left as it is")
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        log.info("no glibc mallopt: the allocator keeps its defaults")
        return False
    if not mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES):
        log.warning("glibc refused a fixed mmap threshold: the worker's RSS may grow")
        return False
    return True
