"""Keeping glibc's heap from growing while the encoder trains.

Each training step frees hundreds of megabytes of tensors of new shapes. After
the first large free, glibc's ``malloc`` serves blocks of up to 32 MB from its
heap instead of mapping them (its dynamic mmap threshold), and small
allocations that outlive a step sit between them, so the freed pages stay
resident and the resident memory climbs step after step (bert_ner from MiniLM:
851 MB at step 0, 1,491 MB at step 50, 1,709 MB at step 119). Two things hold
it level:

- ``release_freed_memory``: ``malloc_trim`` returns the heap's free pages. The
  encoder calls it at the start of each training pass, at most once per
  ``MIN_INTERVAL_S`` CPU seconds, so a tiny encoder's fast steps pay for a trim
  every few steps, not each one.
- ``fix_mmap_threshold``: trimming returns whole free pages only, and blocks
  freed between live ones still fragment the heap. The first training pass
  fixes the mmap threshold at 1 MB, so that the tensors are always mapped and
  unmapped and never sit in the heap.

(The worst of the small long-lived allocations, thinc's chain of one tensor per
parameter per step, is gone: see ``encoder/shim.py``.) Elsewhere than glibc
(macOS, musl) both do nothing.
"""
import ctypes
import os
import time
from typing import Callable, Optional

MIN_INTERVAL_S = 1.0
M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 1 << 20


def _load_libc(name: str) -> Optional[Callable[..., int]]:
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_libc("malloc_trim")
_MALLOPT = _load_libc("mallopt")
_last_trim = float("-inf")
_threshold_fixed = False


def fix_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Map every block over ``threshold_bytes``, once per process, instead of glibc's threshold that rises to 32 MB.

    Left alone where ``GLIBC_TUNABLES`` sets the threshold: that is the user's choice.
    RETURNS (bool): whether the threshold was set now.
    """
    global _threshold_fixed
    if _threshold_fixed or _MALLOPT is None or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    _threshold_fixed = True
    return bool(_MALLOPT(M_MMAP_THRESHOLD, threshold_bytes))


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
