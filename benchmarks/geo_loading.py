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
``--coregistered`` adds each own-raster path read from a co-registered store
(``+coregistered``: written once by ``torchgeo-decur coregister``'s
:func:`~torchgeo_decur.datamodules.coregistered.coregister` into a temporary
folder, the write timed as ``coregister_seconds``; then windowed reads, no
warping), run in turn with the on-the-fly path so both see the same machine load.

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
import tempfile
import time
from collections.abc import Iterable
from statistics import median
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchgeo.datasets import RasterDataset

from torchgeo_decur.datamodules import MultimodalGeoDataModule
from torchgeo_decur.datamodules.coregistered import coregister
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
    through the workers) and ``{'+coregistered': result}`` with
    ``--coregistered`` (read from a store written first), all run in turn.
    """
    variants: dict[str, dict[str, Any]] = {'': {}}
    if args.float32_baseline:
        variants['+float32'] = {'native_dtypes': False}
    written: dict[str, float] = {}
    if args.coregistered:
        store = os.path.join(args.store_dir, f'store{len(os.listdir(args.store_dir))}')
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            coregister(
                MultimodalGeoDataModule(datasets),
                store,
                num_workers=args.num_workers,
                progress=False,
            )
        written['+coregistered'] = time.perf_counter() - start
        variants['+coregistered'] = {'coregistered': store}
    modules = {}
    for suffix, options in variants.items():
        dm = MultimodalGeoDataModule(
            datasets,
            patch_size=patch,
            length=args.patches + args.batch_size,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            statistics_patches=4,
            min_valid_fraction=0.0,
            **options,
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
        if suffix in written:
            out['coregister_seconds'] = written[suffix]
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
    p.add_argument(
        '--coregistered',
        action='store_true',
        help='also time the own-raster paths read from a co-registered store '
        '(written first into a temporary folder), in turn with the others',
    )
    p.add_argument(
        '--gpu-samples-per-second',
        type=float,
        nargs=2,
        default=[300.0, 480.0],
        help='what one GPU consumes (ResNet-50 pretraining), for workers_per_gpu',
    )
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as store_dir:
        args.store_dir = store_dir
        paths = measure(args)
    del args.store_dir
    emit(
        {
            'benchmark': 'geo_loading',
            'config': vars(args),
            'environment': environment(pick_device('cpu')),
            'paths': paths,
            'ratios': ratios(paths),
            'note': 'shared machine: indicative numbers',
        }
    )


def per_224px(result: dict[str, Any], gpu: list[float]) -> None:
    """Add CPU seconds per 224 px patch and workers per GPU to a path's result.

    One worker is one busy CPU core, so a worker's seconds per patch are CPU
    seconds; patches of another size are scaled by their pixel count (224 px
    patches hold ``(224 / patch_size)**2`` times the pixels).
    """
    seconds = 1 / result['patches_per_second_per_worker']
    seconds *= (224 / result['patch_size']) ** 2
    result['cpu_seconds_per_224px_patch'] = seconds
    result['workers_per_gpu'] = [rate * seconds for rate in gpu]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Time every path the arguments ask for."""
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
    if args.num_workers == 1:
        for name, result in paths.items():
            if name.startswith('geo:'):
                per_224px(result, args.gpu_samples_per_second)
    return paths


def ratios(paths: dict[str, Any]) -> dict[str, float]:
    """Co-registered over on-the-fly patches/s, and over the GeoTIFF band-pixels/s."""
    out = {}
    for name, result in paths.items():
        if not name.endswith('+coregistered'):
            continue
        base = name.removesuffix('+coregistered')
        rate = result['patches_per_second']
        out[f'{name} / {base} (patches/s)'] = rate / paths[base]['patches_per_second']
        if 'ssl4eo:geotiff' in paths and base == 'geo:ssl4eo':
            out[f'{name} / ssl4eo:geotiff (band-pixels/s)'] = (
                result['band_megapixels_per_second']
                / paths['ssl4eo:geotiff']['band_megapixels_per_second']
            )
    return out


if __name__ == '__main__':
    main()
