"""Samples per second of the paired SSL4EO-S12 loader (raw GeoTIFF path).

Example (real sample beside the checkout, one worker)::

    python -m benchmarks.data_loading --root ../shared/realdata/ssl4eo-s12-sample \
        --num-workers 1 --samples 64
"""

import argparse
import time

from torch.utils.data import DataLoader, RandomSampler

from torchgeo_decur.datasets import SSL4EOS12Pairs

from .common import emit, environment, pick_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--root', required=True)
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument(
        '--samples', type=int, default=64, help='samples to load (with replacement)'
    )
    p.add_argument('--size', type=int, default=264)
    args = p.parse_args()

    ds = SSL4EOS12Pairs(args.root, size=args.size)
    sampler = RandomSampler(ds, replacement=True, num_samples=args.samples)
    loader = DataLoader(
        ds, batch_size=args.batch_size, sampler=sampler, num_workers=args.num_workers
    )
    start = time.perf_counter()
    count = 0
    for batch in loader:
        count += batch['image_s1'].shape[0]
    elapsed = time.perf_counter() - start
    workers = max(1, args.num_workers)
    emit(
        {
            'benchmark': 'data_loading',
            'config': vars(args),
            'environment': environment(pick_device('cpu')),
            'locations': len(ds),
            'samples': count,
            'seconds': elapsed,
            'samples_per_second': count / elapsed,
            'samples_per_second_per_worker': count / elapsed / workers,
        }
    )


if __name__ == '__main__':
    main()
