"""Freed memory handed back to the system (`harmonycloak.memory`)."""

import json
import platform
import subprocess
import sys

import pytest

from harmonycloak import memory

# In a fresh interpreter: freeing one 16 MB block raises glibc's mmap threshold to 16 MB (its
# dynamic threshold), so the next 64 blocks of 4 MB come from the heap; all but the last are
# freed, below the last one, where glibc keeps them. Resident memory is read from /proc.
FRAGMENTED_HEAP = """
import json, sys
import numpy as np
from harmonycloak.memory import release_freed_memory

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

large = np.ones(2 << 20)
del large
blocks = [np.ones(1 << 19) for _ in range(64)]
held = resident_mb()
del blocks[:-1]
freed = resident_mb()
released = release_freed_memory() if sys.argv[1] == "release" else None
print(json.dumps({"held": held, "freed": freed, "after": resident_mb(), "released": released}))
"""
FREED_MB = 63 * 4


def _fragmented_heap(action: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP, action], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's allocator")
def test_memory_freed_inside_the_heap_is_handed_back_only_when_asked():
    kept = _fragmented_heap("keep")
    assert kept["held"] - kept["after"] < 0.2 * FREED_MB  # freed, but glibc keeps it: the premise
    released = _fragmented_heap("release")
    assert released["released"] is True
    assert released["freed"] - released["after"] > 0.8 * FREED_MB  # handed back


def test_without_glibc_nothing_is_done(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release_freed_memory() is False
