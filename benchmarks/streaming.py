"""Samples per second per worker: streamed WebDataset shards vs the SSL4EO-S12 cache.

Converts the SSL4EO-S12 GeoTIFFs under ``--root`` twice into a temporary
directory: into a lossless cache (``torchgeo-decur cache-ssl4eo-s12``, encoding
``raw``) and into TerraMesh-layout shards (``torchgeo-decur shards``; every
timestamp of every location is one sample, repeated to ``--shard-samples`` so
that the stream has shards to read). It then loads one view of S1 and S2 per
sample through a DataLoader from each: random samples from the cache, the
shuffled stream from the shards (decoding the Zarr zips in the workers). Timing
starts once the first batch has arrived; the best of ``--repeats`` runs is kept,
and the CPU seconds per sample (this process and its workers) are reported too,
which competing jobs on a shared machine do not inflate. Bytes per sample on disk
give the read bandwidth a GPU needs at a given rate.

Example (real sample beside the checkout, one worker)::

    python -m benchmarks.streaming --root /path/to/ssl4eo-s12-sample \
        --num-workers 1
"""

import argparse
import os
import tempfile
import time
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler

from torchgeo_decur.cli.cache_ssl4eo_s12 import write_cache
from torchgeo_decur.cli.shards import SeasonsOf
from torchgeo_decur.datasets import SSL4EOS12Pairs
from torchgeo_decur.datasets.shards import write_shards
from torchgeo_decur.datasets.terramesh import TerraMeshStream

from .common import emit, environment, pick_device
from .data_loading import summarise, time_batches


class Repeat(Dataset[dict[str, Tensor]]):
    """The samples of ``dataset`` cycled to ``length``."""

    def __init__(self, dataset: Any, length: int) -> None:
        self.dataset = dataset
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sample: dict[str, Tensor] = self.dataset[index % len(self.dataset)]
        return sample


def load_once(
    dataset: Dataset[dict[str, Any]], samples: int, batch_size: int, num_workers: int
) -> tuple[int, float, float]:
    """Load ``samples`` once after one untimed batch: (count, seconds, CPU s/sample)."""
    total = samples + batch_size
    if isinstance(dataset, IterableDataset):
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    else:
        sampler = RandomSampler(dataset, replacement=True, num_samples=total)  # type: ignore[arg-type]
        loader = DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers
        )
    return time_batches(loader, total)


def measure(
    dataset: Dataset[dict[str, Any]],
    samples: int,
    batch_size: int,
    workers: int,
    repeats: int,
) -> dict[str, Any]:
    """The best and median rate of ``repeats`` runs (see :func:`summarise`)."""
    runs = [load_once(dataset, samples, batch_size, workers) for _ in range(repeats)]
    return summarise(runs, workers)


def folder_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(path)
        for f in files
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--root', required=True)
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--samples', type=int, default=256, help='timed samples per path')
    p.add_argument('--shard-samples', type=int, default=128, help='samples written')
    p.add_argument('--samples-per-shard', type=int, default=32)
    p.add_argument('--compression', choices=['zstd', 'none'], default='zstd')
    p.add_argument('--size', type=int, default=264)
    p.add_argument('--repeats', type=int, default=3)
    args = p.parse_args(argv)

    paths: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, 'cache')
        start = time.perf_counter()
        write_cache(args.root, cache, encoding='raw', size=args.size, progress=False)
        cached = SSL4EOS12Pairs(args.root, size=args.size, cache=cache, views=1)
        paths['cache:raw'] = {'write_seconds': time.perf_counter() - start}
        paths['cache:raw'].update(
            measure(
                cached, args.samples, args.batch_size, args.num_workers, args.repeats
            )
        )
        source = SeasonsOf([0, 1], root=args.root, size=args.size)
        shards = os.path.join(tmp, 'shards')
        start = time.perf_counter()
        write_shards(
            Repeat(source, args.shard_samples),
            shards,
            samples_per_shard=args.samples_per_shard,
            compression=args.compression,
        )
        name = f'shards:{args.compression}'
        paths[name] = {
            'write_seconds': time.perf_counter() - start,
            'bytes_per_sample': folder_bytes(os.path.join(shards, 'train'))
            / args.shard_samples,
        }
        per_worker = (args.samples + args.batch_size) // max(1, args.num_workers)
        stream = TerraMeshStream(
            shards,
            'train',
            ['s1', 's2'],
            shuffle_buffer=64,
            samples_per_worker=per_worker,
        )
        paths[name].update(
            measure(
                stream, args.samples, args.batch_size, args.num_workers, args.repeats
            )
        )
    base = paths['cache:raw']
    emit(
        {
            'benchmark': 'streaming',
            'note': 'indicative: measured on a CPU machine shared with other jobs',
            'config': vars(args),
            'environment': environment(pick_device('cpu')),
            'timestamps_in_sample': len(source),
            'paths': paths,
            'cpu_ratio_vs_cache': {
                n: base['cpu_seconds_per_sample'] / r['cpu_seconds_per_sample']
                for n, r in paths.items()
                if n != 'cache:raw'
            },
        }
    )


if __name__ == '__main__':
    main()
