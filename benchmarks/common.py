"""Helpers shared by the benchmark scripts: devices, timing, peak memory, JSON."""

import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset


def pick_device(name: str) -> torch.device:
    """``'auto'`` → CUDA when available, else CPU."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so wall-clock timings are honest."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def current_rss_mib() -> float:
    """Resident set size of this process now, in MiB (Linux)."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_it(
    fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int
) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then return ``repeats`` timings (s)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def environment(device: torch.device) -> dict[str, Any]:
    """Machine facts recorded with every result."""
    env: dict[str, Any] = {
        'python': sys.version.split()[0],
        'torch': torch.__version__,
        'device': str(device),
        'cpu': platform.processor() or platform.machine(),
        'threads': torch.get_num_threads(),
    }
    if device.type == 'cuda':
        env['gpu'] = torch.cuda.get_device_name(device)
        # What "fp32" means on tensor-core GPUs depends on these switches.
        env['tf32_matmul'] = torch.backends.cuda.matmul.allow_tf32
        env['tf32_cudnn'] = torch.backends.cudnn.allow_tf32
        env['cudnn_benchmark'] = torch.backends.cudnn.benchmark
    return env


def emit(result: dict[str, Any]) -> None:
    """Print one JSON document on stdout."""
    print(json.dumps(result, indent=2, sort_keys=True))


def write_json(path: str, result: dict[str, Any], overwrite: bool = False) -> None:
    """Write ``result`` as JSON to ``path`` atomically (temporary file + rename).

    Args:
        path: Target file; its directory is created if needed.
        result: JSON-serialisable document.
        overwrite: Replace an existing file instead of refusing to.

    Raises:
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f'{path} already exists; pick another --output or pass --overwrite'
        )
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', suffix='.json', dir=directory)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write('\n')
        if overwrite:
            os.replace(tmp, path)
        else:
            # A hard link fails if the target appeared meanwhile: never clobbers.
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class CycledSamples(Dataset[dict[str, Tensor]]):
    """Returns a few preloaded samples in turn: no reading or decoding.

    What is left of loading is the DataLoader's own cost (collation, the move
    through worker shared memory), the floor every real dataset is compared with.
    """

    def __init__(self, samples: Sequence[dict[str, Tensor]], length: int) -> None:
        """Initialize a new CycledSamples instance.

        Args:
            samples: The samples, returned in turn.
            length: Dataset length (any number of indices).
        """
        self.samples = list(samples)
        self.length = length

    def __len__(self) -> int:
        """The given length."""
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Sample ``index`` modulo the number of samples."""
        return self.samples[index % len(self.samples)]
