"""Small helpers shared by the datasets."""

import ctypes
import ctypes.util
import os
from collections.abc import Sequence

import torch.utils.data

# glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Freed heap memory a DataLoader worker keeps for reuse instead of trimming.
WORKER_TRIM_THRESHOLD = 256 * 2**20
#: Allocations below this size come from the heap (glibc's maximum is 32 MiB).
WORKER_MMAP_THRESHOLD = 32 * 2**20

_tuned_pid: int | None = None


def distinct_subset(
    modalities: Sequence[str], allowed: Sequence[str]
) -> tuple[str, ...]:
    """Validate a modality list: non-empty, no repeats, only ``allowed`` names.

    Args:
        modalities: Requested modalities, in the order samples should use.
        allowed: Modalities the dataset has.

    Returns:
        ``modalities`` as a tuple.

    Raises:
        ValueError: If the list is empty, repeats a name or names an unknown one.
    """
    mods = tuple(modalities)
    if not mods or len(set(mods)) != len(mods) or set(mods) - set(allowed):
        raise ValueError(
            f'modalities must be distinct entries of {tuple(allowed)}, got {list(mods)}'
        )
    return mods


def retain_freed_memory_in_worker() -> bool:
    """Let a DataLoader worker reuse freed sample buffers instead of refaulting them.

    Why this exists: a paired sample is a few MiB of fresh arrays. glibc serves
    such sizes with ``mmap`` (or trims its heap once the batch is freed), so every
    sample faults its pages in anew; in a worker on a virtual machine that costs
    more than reading the sample from the cache (one worker on the real 264 px
    SSL4EO-S12 sample: about 390 -> 600 samples/s, see ``benchmarks/data_loading``).
    Raising glibc's mmap and trim thresholds keeps those pages in the heap.

    Only DataLoader worker processes are changed (they exist just to load data);
    the main process is left alone. A no-op without glibc, and once per process.

    Returns:
        True if the thresholds are set in this process (now or earlier).
    """
    global _tuned_pid
    pid = os.getpid()
    if _tuned_pid == pid:
        return True
    if torch.utils.data.get_worker_info() is None:
        return False
    name = ctypes.util.find_library('c')
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not (
        mallopt(_M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD)
        and mallopt(_M_TRIM_THRESHOLD, WORKER_TRIM_THRESHOLD)
    ):
        return False
    _tuned_pid = pid
    return True
