"""The worker keeps glibc's mmap threshold fixed (processors/malloc_tuning.py)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from callstream.processors.malloc_tuning import set_by_operator, tune_malloc

# Run in a fresh interpreter, whose heap has no free megabyte to serve the block from (the
# threshold only decides how the heap grows). glibc's own rule raises the threshold to the
# freed block's 4 MB, so the 1 MB block after it comes from the heap; kept fixed, it is mapped.
MAPPED_AFTER_A_LARGER_ONE_FREED = """
import ctypes, sys
from callstream.processors.malloc_tuning import tune_malloc
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
tuned = sys.argv[1] == "tuned" and tune_malloc()
libc.free(libc.malloc(4 << 20))
before = libc.mallinfo2().hblkhd
block = libc.malloc(1 << 20)
print(tuned, libc.mallinfo2().hblkhd - before >= 1 << 20)
libc.free(block)
"""


def mapped(tuned: str) -> str:
    command = [sys.executable, "-c", MAPPED_AFTER_A_LARGER_ONE_FREED, tuned]
    # glibc's own settings, when a shell exports them, would decide instead.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"
    }
    run = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_a_large_block_freed_leaves_the_next_ones_mapped_on_their_own() -> None:
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("no glibc 2.33 or later")
    assert mapped("tuned") == "True True"
    assert mapped("untuned") == "False False"  # what glibc does by itself


def test_a_threshold_the_operator_set_is_left_alone() -> None:
    assert set_by_operator({"MALLOC_MMAP_THRESHOLD_": "1048576"})
    assert set_by_operator({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1048576"})
    assert not set_by_operator({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert not tune_malloc({"MALLOC_MMAP_THRESHOLD_": "1048576"})
