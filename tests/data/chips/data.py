#!/usr/bin/env python3
"""Write tiny paired chips of two sensors, one folder each, named differently.

What a user's own chip folders look like::

    s1/S1_<key>.tif    2 bands float32 (VV, VH in dB, band descriptions set),
                       NaN in a corner of one chip (no nodata value)
    s2/<key>_S2.tif    13 bands uint16 (L1C DN, band descriptions B1 ... B12),
                       nodata 0, a corner of 0 in one chip
    splits/train.txt   keys of the training chips, one per line
    splits/val.txt     keys of the validation chips

The keys are ``tile_00`` ... ``tile_07``; ``s1/S1_tile_98.tif`` and
``s2/tile_99_S2.tif`` have no partner. Because the S1 and S2 stems differ
(``S1_tile_00`` vs ``tile_00_S2``), pairing needs a pattern per modality, e.g.
``{'s1': 'S1_(?P<key>.+)', 's2': '(?P<key>.+)_S2'}``. Every chip is 16 x 16 px
(EPSG:32632, 10 m); band b of every chip of a modality has a known offset so the
tests can check band selection by value.

Run from anywhere: ``python tests/data/chips/data.py``.
"""

import os
import shutil

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 16
KEYS = [f'tile_{i:02d}' for i in range(8)]
S1_BANDS = ('VV', 'VH')
S2_BANDS = (
    'B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B8A', 'B9', 'B10', 'B11', 'B12'
)  # fmt: skip


def write(
    path: str,
    data: np.ndarray,
    names: tuple[str, ...],
    index: int,
    nodata: float | None,
) -> None:
    """Write one chip (C, H, W) with band descriptions, next to the previous one."""
    profile = {
        'driver': 'GTiff',
        'width': SIZE,
        'height': SIZE,
        'count': data.shape[0],
        'dtype': data.dtype.name,
        'crs': 'EPSG:32632',
        'transform': from_origin(500000 + 160 * index, 5400000, 10, 10),
        'nodata': nodata,
    }
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(data)
        dst.descriptions = names


def s1_chip(rng: np.random.Generator) -> np.ndarray:
    """VV around -12 dB and VH around -20 dB: band b is offset -12 - 8 b."""
    noise = rng.normal(0.0, 2.0, (2, SIZE, SIZE))
    return (np.array([-12.0, -20.0])[:, None, None] + noise).astype('float32')


def s2_chip(rng: np.random.Generator) -> np.ndarray:
    """Band b around 1000 + 100 b DN (never 0, the nodata value)."""
    base = 1000 + 100 * np.arange(13)[:, None, None]
    return (base + rng.integers(0, 50, (13, SIZE, SIZE))).astype('uint16')


def main() -> None:
    """Rewrite the s1/, s2/ and splits/ folders."""
    rng = np.random.default_rng(0)
    for sub in ('s1', 's2', 'splits'):
        shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)
        os.makedirs(os.path.join(HERE, sub))
    for i, key in enumerate([*KEYS, 'tile_98']):
        s1 = s1_chip(rng)
        if key == 'tile_01':
            s1[:, :4, :4] = np.nan  # no-return corner
        write(os.path.join(HERE, 's1', f'S1_{key}.tif'), s1, S1_BANDS, i, None)
    for i, key in enumerate([*KEYS, 'tile_99']):
        s2 = s2_chip(rng)
        if key == 'tile_02':
            s2[:, -4:, -4:] = 0  # outside the swath
        write(os.path.join(HERE, 's2', f'{key}_S2.tif'), s2, S2_BANDS, i, 0)
    splits = {'train': KEYS[:6], 'val': KEYS[6:]}
    for name, keys in splits.items():
        with open(os.path.join(HERE, 'splits', f'{name}.txt'), 'w') as f:
            f.write('# chip keys, one per line\n' + '\n'.join(keys) + '\n')


if __name__ == '__main__':
    main()
