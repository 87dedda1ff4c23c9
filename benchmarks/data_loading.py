"""Samples per second of the paired SSL4EO-S12 loader: GeoTIFFs vs the cache.

Loads random paired samples (two views of S1 and S2, as in pretraining) through a
DataLoader, first from the GeoTIFF layout under ``--root``, then from each cache
given with ``--cache`` and from each encoding in ``--write-cache`` (written to a
temporary directory first; the write time is reported). Wall-clock timing starts
once the first batch has arrived, so worker start-up is not counted; the best of
``--repeats`` runs is kept. CPU seconds per sample (this process plus its
workers) are reported too: on a machine shared with other jobs they measure the
work per sample, which wall-clock rates cannot.

Example (a real SSL4EO-S12 sample location in torchgeo's layout, one worker)::

    python -m benchmarks.data_loading --root /path/to/ssl4eo-s12-sample \
        --num-workers 1 --write-cache raw uint8
"""

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Sized
from statistics import median
from typing import Any, cast

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from torchgeo_decur.cli.cache_ssl4eo_s12 import write_cache
from torchgeo_decur.datamodules.utils import tune_worker_memory
from torchgeo_decur.datasets import SSL4EOS12Pairs

from .common import emit, environment, pick_device


class Preloaded(Dataset[dict[str, Tensor]]):
    """Returns one fixed sample: the DataLoader's own cost (collate, transfer)."""

    def __init__(self, sample: dict[str, Tensor], length: int) -> None:
        self.sample = sample
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.sample


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load_once(
    dataset: Dataset[dict[str, Tensor]], samples: int, batch_size: int, num_workers: int
) -> tuple[int, float, float]:
    """Load random samples once: (timed samples, wall seconds, CPU s per sample).

    The first batch is loaded before the clock starts (worker start-up). The CPU
    time covers every sample loaded, in this process and in the workers (which
    are joined, and so accounted, when the loader is exhausted).
    """
    # One extra batch: it is loaded first and not timed.
    total = samples + batch_size
    sampler = RandomSampler(cast(Sized, dataset), replacement=True, num_samples=total)
    # The data module's worker hook, so the numbers match training.
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=tune_worker_memory,
    )
    cpu_start = _cpu_seconds()
    batches = iter(loader)
    next(batches)
    start = time.perf_counter()
    count = sum(batch['image_s1'].shape[0] for batch in batches)
    elapsed = time.perf_counter() - start
    del batches
    return count, elapsed, (_cpu_seconds() - cpu_start) / total


def samples_per_second(
    dataset: Dataset[dict[str, Tensor]],
    samples: int,
    batch_size: int,
    num_workers: int,
    repeats: int,
) -> dict[str, Any]:
    """Best and median throughput over ``repeats`` runs.

    The best run is the least disturbed by other processes on a shared machine;
    CPU seconds per sample do not depend on such competition at all.
    """
    runs = [
        load_once(dataset, samples, batch_size, num_workers) for _ in range(repeats)
    ]
    rates = [count / seconds for count, seconds, _ in runs]
    cpu = min(c for _, _, c in runs)
    workers = max(1, num_workers)
    return {
        'samples': runs[0][0],
        'repeats': repeats,
        'samples_per_second': max(rates),
        'samples_per_second_median': median(rates),
        'samples_per_second_per_worker': max(rates) / workers,
        'cpu_seconds_per_sample': cpu,
        'samples_per_cpu_second': 1.0 / cpu,
    }


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
    p.add_argument('--repeats', type=int, default=3, help='runs per path (best kept)')
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
    args = p.parse_args(argv)

    geotiff = SSL4EOS12Pairs(args.root, size=args.size)
    paths = {
        'geotiff': samples_per_second(
            geotiff, args.samples, args.batch_size, args.num_workers, args.repeats
        )
    }
    with tempfile.TemporaryDirectory() as tmp:
        caches = {f'cache:{os.path.basename(c.rstrip("/"))}': c for c in args.cache}
        for encoding in args.write_cache:
            output = os.path.join(tmp, encoding)
            start = time.perf_counter()
            write_cache(
                args.root, output, encoding=encoding, size=args.size, progress=False
            )
            caches[f'cache:{encoding}'] = output
            paths[f'cache:{encoding}'] = {'write_seconds': time.perf_counter() - start}
        for name, directory in caches.items():
            dataset = SSL4EOS12Pairs(args.root, size=args.size, cache=directory)
            paths.setdefault(name, {}).update(
                samples_per_second(
                    dataset,
                    args.cache_samples,
                    args.batch_size,
                    args.num_workers,
                    args.repeats,
                )
            )
            if args.floor:
                paths[f'floor:{name}'] = samples_per_second(
                    Preloaded(dataset[0], len(dataset)),
                    args.cache_samples,
                    args.batch_size,
                    args.num_workers,
                    args.repeats,
                )
    base = paths['geotiff']
    emit(
        {
            'benchmark': 'data_loading',
            'config': vars(args),
            'environment': environment(pick_device('cpu')),
            'locations': len(geotiff),
            'paths': paths,
            # Wall-clock (best run) and CPU-time ratios against the GeoTIFF path.
            'speedup_vs_geotiff': {
                name: result['samples_per_second'] / base['samples_per_second']
                for name, result in paths.items()
                if name != 'geotiff'
            },
            'cpu_speedup_vs_geotiff': {
                name: base['cpu_seconds_per_sample'] / result['cpu_seconds_per_sample']
                for name, result in paths.items()
                if name != 'geotiff'
            },
        }
    )


if __name__ == '__main__':
    main()
