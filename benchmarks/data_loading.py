"""Samples per second of the paired SSL4EO-S12 loader: GeoTIFFs vs the cache.

Loads random paired samples (two views of S1 and S2, as in pretraining) through a
DataLoader, first from the GeoTIFF layout under ``--root``, then from each cache
given with ``--cache`` and from each encoding in ``--write-cache`` (written to a
temporary directory first; the write time is reported). Wall-clock timing starts
once the first batch has arrived, so worker start-up is not counted. The paths
are run in turn, ``--repeats`` rounds of one run each, so that a disturbance
from other jobs hits all of them alike; the best and the median run are
reported, and the ratios use the medians. CPU seconds per sample (this process
plus its workers) are reported too: on a machine shared with other jobs they
measure the work per sample, which wall-clock rates cannot.

Samples travel in their storage types (S2 uint16 DN, S1 float32 dB, uint8
codes). ``--float32-baseline`` adds, side by side in the same rounds, the
GeoTIFF and lossless cache paths with every sample converted to float32 in the
worker: what the loader returned before storage types were kept, so the JSON
holds before/after numbers measured together. ``--floor`` adds a dataset
returning one preloaded sample of each cache path (same types and shapes): the
DataLoader's own cost, which no reader can beat. That sample stays in the CPU
cache, so ``--floor`` also times ``floor-distinct:`` paths cycling
:data:`DISTINCT` separate copies of it (more bytes than a CPU cache holds), whose
copies come from main memory as a reader's do.

Example (a real SSL4EO-S12 sample location in torchgeo's layout, one worker)::

    python -m benchmarks.data_loading --root /path/to/ssl4eo-s12-sample \
        --num-workers 1 --write-cache raw uint8 --floor --float32-baseline
"""

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Iterable, Sized
from statistics import median
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from torchgeo_decur.cli.cache_ssl4eo_s12 import write_cache
from torchgeo_decur.datamodules.utils import tune_worker_memory
from torchgeo_decur.datasets import SSL4EOS12Pairs
from torchgeo_decur.datasets.utils import collate_batch_rows

from .common import CycledSamples, emit, environment, pick_device

#: Separate preloaded copies the ``floor-distinct:`` paths cycle through (32 MB
#: of 264 px uint8 samples, several times a server CPU's last-level cache).
DISTINCT = 16


class AsFloat32(Dataset[dict[str, Tensor]]):
    """Every image of another dataset's samples as float32, in the worker."""

    def __init__(self, dataset: Dataset[dict[str, Tensor]]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(cast(Sized, self.dataset))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {k: v.float() for k, v in self.dataset[index].items()}


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def copy_bandwidth(
    directory: str, megabytes: int = 2, repeats: int = 200
) -> dict[str, float]:
    """GB/s of a memory copy and of ``read()`` from a page-cached file, same size.

    Every cached sample crosses the kernel once (``read`` from the page cache into
    the batch buffer), while the DataLoader floor copies a preloaded sample in
    user space. Where the kernel's copy is much slower than ``memcpy`` (e.g.
    virtual machines whose CPU flags hide fast string copies), no file reader
    reaches the floor; these two numbers say how far apart they are on the
    machine that ran the benchmark.

    Args:
        directory: Where to write the scratch file (removed afterwards).
        megabytes: Size of one copy, about one uint8 sample at 264 px.
        repeats: Copies timed per method (the median is reported).

    Returns:
        ``{'memcpy_gb_per_s': ..., 'file_read_gb_per_s': ...}``.
    """
    source = torch.randint(0, 255, (megabytes << 20,), dtype=torch.uint8)
    target = torch.empty_like(source)
    path = os.path.join(directory, 'bandwidth.bin')
    with open(path, 'wb') as f:
        f.write(source.numpy().tobytes())

    def read() -> None:
        with open(path, 'rb', buffering=0) as f:
            f.readinto(memoryview(target.numpy()))

    rates = {}
    for name, copy in (
        ('memcpy_gb_per_s', lambda: target.copy_(source)),
        ('file_read_gb_per_s', read),
    ):
        copy()  # warm the page cache and the target's pages
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            copy()
            times.append(time.perf_counter() - start)
        rates[name] = megabytes / 1024 / median(times)
    os.remove(path)
    return rates


def load_once(
    dataset: Dataset[dict[str, Tensor]], samples: int, batch_size: int, num_workers: int
) -> tuple[int, float, float]:
    """Load random samples once, timed by :func:`time_batches`."""
    # One extra batch: it is loaded first and not timed.
    total = samples + batch_size
    sampler = RandomSampler(cast(Sized, dataset), replacement=True, num_samples=total)
    # The data module's worker hook and collate function, so the numbers match
    # training (cached batches are read into one buffer and not stacked again).
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=tune_worker_memory,
        collate_fn=collate_batch_rows,
    )
    return time_batches(loader, total)


def time_batches(
    loader: Iterable[dict[str, Tensor]], total: int
) -> tuple[int, float, float]:
    """Iterate a loader once: (timed samples, wall seconds, CPU s per sample).

    The first batch is loaded before the clock starts (worker start-up). The CPU
    time covers every sample loaded, in this process and in the workers (which
    are joined, and so accounted, when the loader is exhausted).

    Args:
        loader: Batches with an ``image_s1`` key.
        total: Samples the loader yields in all, the first batch included.
    """
    cpu_start = _cpu_seconds()
    batches = iter(loader)
    next(batches)
    start = time.perf_counter()
    count = sum(batch['image_s1'].shape[0] for batch in batches)
    elapsed = time.perf_counter() - start
    del batches
    return count, elapsed, (_cpu_seconds() - cpu_start) / total


def summarise(runs: list[tuple[int, float, float]], num_workers: int) -> dict[str, Any]:
    """Best and median throughput of a path's runs.

    The best run is the least disturbed by other processes on a shared machine,
    the median the typical one; CPU seconds per sample do not depend on such
    competition at all.
    """
    rates = [count / seconds for count, seconds, _ in runs]
    cpu = min(c for _, _, c in runs)
    workers = max(1, num_workers)
    return {
        'samples': runs[0][0],
        'repeats': len(runs),
        'samples_per_second': max(rates),
        'samples_per_second_median': median(rates),
        'samples_per_second_per_worker': max(rates) / workers,
        'samples_per_second_per_worker_median': median(rates) / workers,
        'cpu_seconds_per_sample': cpu,
        'samples_per_cpu_second': 1.0 / cpu,
    }


def measure(
    paths: dict[str, tuple[Dataset[dict[str, Tensor]], int]],
    batch_size: int,
    num_workers: int,
    repeats: int,
) -> dict[str, dict[str, Any]]:
    """Run every path once per round, ``repeats`` rounds, and summarise each.

    Args:
        paths: Name -> (dataset, timed samples per run).
        batch_size: Samples per batch.
        num_workers: DataLoader workers.
        repeats: Rounds.

    Returns:
        Name -> :func:`summarise` of its runs.
    """
    runs: dict[str, list[tuple[int, float, float]]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, (dataset, samples) in paths.items():
            runs[name].append(load_once(dataset, samples, batch_size, num_workers))
    return {name: summarise(r, num_workers) for name, r in runs.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--root', required=True)
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument(
        '--samples', type=int, default=64, help='timed GeoTIFF samples (random)'
    )
    p.add_argument(
        '--cache-samples', type=int, default=512, help='timed samples per cache'
    )
    p.add_argument('--size', type=int, default=264)
    p.add_argument('--repeats', type=int, default=3, help='rounds (one run per path)')
    p.add_argument('--cache', nargs='*', default=[], help='existing cache dirs')
    p.add_argument(
        '--write-cache',
        nargs='*',
        default=[],
        choices=['raw', 'float32', 'uint8'],
        help='encodings to write to a temporary cache and measure',
    )
    p.add_argument(
        '--floor',
        action='store_true',
        help='also time a dataset that returns one preloaded sample of each '
        'measured path: the DataLoader floor no reader can beat',
    )
    p.add_argument(
        '--float32-baseline',
        action='store_true',
        help='also time the GeoTIFF and lossless cache paths with float32 samples '
        '(the loader before storage types), in the same rounds',
    )
    args = p.parse_args(argv)

    geotiff = SSL4EOS12Pairs(args.root, size=args.size)
    todo: dict[str, tuple[Dataset[dict[str, Tensor]], int]] = {
        'geotiff': (geotiff, args.samples)
    }
    if args.float32_baseline:
        todo['geotiff+float32'] = (AsFloat32(geotiff), args.samples)
    written: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {f'cache:{os.path.basename(c.rstrip("/"))}': c for c in args.cache}
        for encoding in args.write_cache:
            output = os.path.join(tmp, encoding)
            start = time.perf_counter()
            write_cache(
                args.root, output, encoding=encoding, size=args.size, progress=False
            )
            caches[f'cache:{encoding}'] = output
            written[f'cache:{encoding}'] = {
                'write_seconds': time.perf_counter() - start
            }
        for name, directory in caches.items():
            dataset = SSL4EOS12Pairs(args.root, size=args.size, cache=directory)
            sample = dataset[0]
            todo[name] = (dataset, args.cache_samples)
            if args.float32_baseline and any(
                v.dtype != torch.float32 and v.dtype != torch.uint8
                for v in sample.values()
            ):
                todo[f'{name}+float32'] = (AsFloat32(dataset), args.cache_samples)
            if args.floor:
                todo[f'floor:{name}'] = (
                    CycledSamples([sample], len(dataset)),
                    args.cache_samples,
                )
                copies = [
                    {k: v.clone() for k, v in sample.items()} for _ in range(DISTINCT)
                ]
                todo[f'floor-distinct:{name}'] = (
                    CycledSamples(copies, len(dataset)),
                    args.cache_samples,
                )
                if f'{name}+float32' in todo:
                    todo[f'floor:{name}+float32'] = (
                        CycledSamples(
                            [{k: v.float() for k, v in sample.items()}], len(dataset)
                        ),
                        args.cache_samples,
                    )
        paths = measure(todo, args.batch_size, args.num_workers, args.repeats)
        bandwidth = copy_bandwidth(tmp)
        dtypes = {
            name: {k: str(v.dtype) for k, v in dataset[0].items()}
            for name, (dataset, _) in todo.items()
        }
    for name, extra in written.items():
        paths[name].update(extra)
    emit(
        {
            'benchmark': 'data_loading',
            'config': vars(args),
            'environment': environment(pick_device('cpu')),
            'copy_bandwidth': bandwidth,
            'locations': len(geotiff),
            'dtypes': dtypes,
            'paths': paths,
            # Median wall-clock and best CPU-time ratios against the GeoTIFF path.
            'speedup_vs_geotiff': ratios(paths, 'geotiff'),
            'cpu_speedup_vs_geotiff': {
                name: paths['geotiff']['cpu_seconds_per_sample']
                / result['cpu_seconds_per_sample']
                for name, result in paths.items()
                if name != 'geotiff'
            },
            'targets': targets(paths),
        }
    )


def ratios(paths: dict[str, dict[str, Any]], base: str) -> dict[str, float]:
    """Median samples/s of every other path over that of ``base``."""
    rate = paths[base]['samples_per_second_median']
    return {
        name: result['samples_per_second_median'] / rate
        for name, result in paths.items()
        if name != base
    }


def targets(paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The loading targets, on median rates per worker, where measured.

    * the lossless cache at least 8x the GeoTIFF path (against the float32
      GeoTIFF path as well, when ``--float32-baseline`` ran it);
    * the uint8 cache at least 90 % of its DataLoader floor.

    The ratio to the floor of distinct samples is reported alongside, for
    information (the target is set against the one-sample floor).
    """
    out: dict[str, Any] = {}
    rate = {n: r['samples_per_second_median'] for n, r in paths.items()}
    if 'cache:raw' in rate:
        for base in ('geotiff', 'geotiff+float32'):
            if base in rate:
                ratio = rate['cache:raw'] / rate[base]
                out[f'raw_vs_{base}'] = {'ratio': ratio, 'met': ratio >= 8}
    if 'cache:uint8' in rate and 'floor:cache:uint8' in rate:
        ratio = rate['cache:uint8'] / rate['floor:cache:uint8']
        out['uint8_vs_floor'] = {'ratio': ratio, 'met': ratio >= 0.9}
        if 'floor-distinct:cache:uint8' in rate:
            out['uint8_vs_floor']['ratio_to_distinct_floor'] = (
                rate['cache:uint8'] / rate['floor-distinct:cache:uint8']
            )
    return out


if __name__ == '__main__':
    main()
