"""Patches per second of MultimodalGeoDataModule vs the SSL4EO-S12 GeoTIFF loader.

Three paths, each through a DataLoader with ``--num-workers`` workers:

* ``geo:fixture``: the own-rasters test fixture (S1-like in EPSG:4326, S2-like in UTM
  32N, a DEM in EPSG:3035), every patch read and reprojected from three CRSs onto the
  S1 grid (``--fixture-patch`` px);
* ``geo:ssl4eo``: the SSL4EO-S12 sample (``--root``) read as torchgeo RasterDatasets
  (S1 VV/VH files, the 13 S2 L1C band files at 10-60 m, every scene of a location
  mosaicked), ``--patch`` px patches on the S1 grid;
* ``ssl4eo:geotiff``: the same sample through the paired SSL4EO-S12 dataset
  (two seasons per modality, resized to ``--size`` px), the loader of the curated
  pretraining configs.

Integer rasters (the S2 bands) leave the workers as uint16 (the data module's
``native_dtypes``); ``--float32-baseline`` adds the own-raster paths with
``native_dtypes=False`` (float32 patches, as before), run in turn with them.

Patches differ in size and view count between the paths, so besides patches per
second (and per worker) the JSON reports band-pixels per second (patches x views x
bands x height x width). Timing starts after the first batch (worker start-up not
counted); the best of ``--repeats`` runs is kept, with the median. On a machine
shared with other jobs the numbers are indicative only.

Example (real sample beside the checkout)::

    python -m benchmarks.geo_loading --root ../shared/realdata/ssl4eo-s12-sample \
        --num-workers 1
"""

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterable
from statistics import median
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchgeo.datasets import RasterDataset

from torchgeo_decur.datamodules import MultimodalGeoDataModule
from torchgeo_decur.datasets import SSL4EOS12Pairs

from .common import emit, environment, pick_device

FIXTURE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'tests',
    'data',
    'own_rasters',
)


class SSL4EOS1(RasterDataset):
    """SSL4EO-S12 Sentinel-1 scenes: one ``VV.tif`` and ``VH.tif`` per scene."""

    filename_glob = 'VV.tif'
    filename_regex = r'^(?P<band>V[VH])\.tif$'
    all_bands = ('VV', 'VH')
    separate_files = True


class SSL4EOS2L1C(RasterDataset):
    """SSL4EO-S12 Sentinel-2 L1C scenes: one file per band, 10-60 m."""

    filename_glob = 'B1.tif'
    filename_regex = r'^(?P<band>B\d+A?)\.tif$'
    all_bands = (
        'B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B8A', 'B9', 'B10', 'B11', 'B12'
    )  # fmt: skip
    separate_files = True


def timed(
    batches: Iterable[dict[str, Tensor]], keys: list[str]
) -> tuple[int, int, float]:
    """Drain a loader after its first batch: (patches, band-pixels, seconds)."""
    it = iter(batches)
    next(it)
    start = time.perf_counter()
    patches = pixels = 0
    for batch in it:
        patches += batch[keys[0]].shape[0]
        pixels += sum(batch[k].numel() for k in keys)
    return patches, pixels, time.perf_counter() - start


def summarise(runs: list[tuple[int, int, float]], workers: int) -> dict[str, Any]:
    """Best and median rates of several runs."""
    rates = [p / s for p, _, s in runs]
    pixel_rates = [x / s for _, x, s in runs]
    best = max(rates)
    return {
        'patches': runs[0][0],
        'repeats': len(runs),
        'patches_per_second': best,
        'patches_per_second_median': median(rates),
        'patches_per_second_per_worker': best / max(1, workers),
        'band_megapixels_per_second': max(pixel_rates) / 1e6,
    }


def geo_path(
    datasets: dict[str, RasterDataset], patch: int, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Throughput of MultimodalGeoDataModule's training loader (raw patches).

    Returns ``{'': result}``, plus ``{'+float32': result}`` with
    ``--float32-baseline`` (``native_dtypes=False``: every patch as float32
    through the workers), the two run in turn.
    """
    variants = {'': True} | ({'+float32': False} if args.float32_baseline else {})
    modules = {}
    for suffix, native in variants.items():
        dm = MultimodalGeoDataModule(
            datasets,
            patch_size=patch,
            length=args.patches + args.batch_size,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            statistics_patches=4,
            min_valid_fraction=0.0,
            native_dtypes=native,
        )
        # torchgeo announces each CRS/resolution change on stdout; keep stdout JSON.
        with contextlib.redirect_stdout(sys.stderr):
            dm.setup('fit')
        modules[suffix] = dm
    keys = [f'image_{m}' for m in datasets]
    runs: dict[str, list[tuple[int, int, float]]] = {s: [] for s in modules}
    for _ in range(args.repeats):
        for suffix, dm in modules.items():
            runs[suffix].append(timed(dm.train_dataloader(), keys))
    results = {}
    for suffix, dm in modules.items():
        out = summarise(runs[suffix], args.num_workers)
        out['patch_size'] = patch
        out['bands'] = {m: dm.channels[m] for m in datasets}
        out['dtypes'] = {
            m: str(dm.train_dataset.dtypes.get(m) or 'torch.float32') for m in datasets
        }
        out['views'] = 1
        results[suffix] = out
    return results


def ssl4eo_path(args: argparse.Namespace) -> dict[str, Any]:
    """Throughput of the paired SSL4EO-S12 GeoTIFF dataset (two views)."""
    dataset: Dataset[dict[str, Tensor]] = SSL4EOS12Pairs(args.root, size=args.size)
    keys = ['image_s1', 'image_s2']
    runs = []
    for _ in range(args.repeats):
        sampler = RandomSampler(
            dataset,  # type: ignore[arg-type]
            replacement=True,
            num_samples=args.patches + args.batch_size,
        )
        loader = DataLoader(
            dataset,
            batch_size=args.batch_size,
            sampler=sampler,
            num_workers=args.num_workers,
        )
        runs.append(timed(loader, keys))
    out = summarise(runs, args.num_workers)
    out['patch_size'] = args.size
    out['views'] = 2
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--root', default=None, help='SSL4EO-S12 sample (s1/, s2c/)')
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--patches', type=int, default=64, help='timed patches per run')
    p.add_argument('--patch', type=int, default=128, help='geo patch size, SSL4EO')
    p.add_argument('--fixture-patch', type=int, default=32)
    p.add_argument('--size', type=int, default=264, help='SSL4EO-S12 sample size')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument(
        '--float32-baseline',
        action='store_true',
        help='also time the own-raster paths with native_dtypes=False (float32 '
        'patches), in turn with the default',
    )
    args = p.parse_args(argv)

    fixture = geo_path(
        {m: RasterDataset(paths=os.path.join(FIXTURE, m)) for m in ('s1', 's2', 'dem')},
        args.fixture_patch,
        args,
    )
    paths = {f'geo:fixture{suffix}': r for suffix, r in fixture.items()}
    if args.root is not None:
        ssl4eo = geo_path(
            {
                's1': SSL4EOS1(paths=os.path.join(args.root, 's1')),
                's2': SSL4EOS2L1C(paths=os.path.join(args.root, 's2c')),
            },
            args.patch,
            args,
        )
        paths |= {f'geo:ssl4eo{suffix}': r for suffix, r in ssl4eo.items()}
        paths['ssl4eo:geotiff'] = ssl4eo_path(args)
    emit(
        {
            'benchmark': 'geo_loading',
            'config': vars(args),
            'environment': environment(pick_device('cpu')),
            'paths': paths,
            'note': 'shared machine: indicative numbers',
        }
    )


if __name__ == '__main__':
    main()
