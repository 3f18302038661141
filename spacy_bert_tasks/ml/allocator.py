"""Giving the memory that glibc keeps after each training step back to the OS.

Each training step frees hundreds of megabytes of tensors of new shapes. After
the first large free, glibc's ``malloc`` serves blocks of up to 32 MB from its
heap instead of mapping them (its dynamic mmap threshold), and small
allocations that outlive a step sit between them (the worst of them, thinc's
per-step chain of parameter tensors, is gone: see ``encoder/shim.py``), so the
freed pages stay resident and the resident memory climbs step after step (bert_ner from MiniLM:
851 MB at step 0, 1,491 MB at step 50, 1,709 MB at step 119; with the pages
given back each step: about 940 MB throughout). Nothing references that memory:
``malloc_trim`` releases it. The encoder calls ``release_freed_memory`` at the
start of each training pass, at most once per ``MIN_INTERVAL_S`` CPU seconds,
so a tiny encoder's fast steps pay for a trim every few steps, not each one.
Elsewhere than glibc (macOS, musl) it does nothing.
"""
import ctypes
import time
from typing import Callable, Optional

MIN_INTERVAL_S = 1.0


def _load_malloc_trim() -> Optional[Callable[[int], int]]:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_malloc_trim()
_last_trim = float("-inf")


def release_freed_memory(min_interval_s: float = MIN_INTERVAL_S) -> bool:
    """Return the heap's free pages to the OS, unless that was done less than ``min_interval_s`` CPU seconds ago.

    RETURNS (bool): whether memory was trimmed.
    """
    global _last_trim
    now = time.process_time()
    if _MALLOC_TRIM is None or now - _last_trim < min_interval_s:
        return False
    _last_trim = now
    _MALLOC_TRIM(0)
    return True
