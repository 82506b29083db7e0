"""Handing memory that was freed back to the system, so a long song's peak is what it holds.

A long song is worked on in pieces (the noise rendered, held to the band check), each piece's
scratch arrays freed before the next. On Linux, glibc's allocator keeps freed blocks of up to
32 MB in its heaps for reuse rather than returning them, and blocks freed by the intra-op
threads sit in those threads' own heaps, where the main thread's next allocation does not look.
The process's resident memory then holds what was freed beside what is in use: on a 10-minute
stereo song, about 550 MB that the optimisation had freed was still resident when the noise was
written, and writing it grew the resident memory by 400–500 MB more than the noise it holds.
`release_freed_memory` asks glibc to give the free pages of every heap back (`malloc_trim`, what
long-running Python services such as Dask's workers do). On other C libraries it does nothing:
their allocators are left to their own rules.

Python's own memory tools do not do this (`gc.collect` frees objects, not the allocator's pages),
hence the small call through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Give the free pages of the allocator's heaps back to the system; False where the C library
    cannot (not glibc), True otherwise."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
