#!/usr/bin/env python3
"""Write a tiny SSL4EO-S12 fixture in the real on-disk layout.

Layout (as torchgeo's SSL4EOS12 and the DeCUR reference expect)::

    s1/<7-digit location>/<S1 product id>/{VV,VH}.tif           float32 dB
    s2c/<location>/<S2 product id>/{B1..B12, B8A, B10}.tif       uint16 DN (L1C)
    s2a/<location>/<S2 product id>/{B1..B12, B8A}.tif            uint16 DN (L2A)

Bands keep their native grids like the real files (10 m: SIZE px, 20 m: SIZE/2,
60 m: SIZE/6), one band per GeoTIFF, EPSG:4326. S1 holds a few -inf and NaN pixels
(zero backscatter / no data), as real GRD patches can. S1 products alternate
between S1A and S1B (``S1A_..._20200307``, ``S1B_..._20200605``, ...), so sorting
the folder names does not sort them by date.

``invalid/`` holds broken locations for error-handling tests: location 0000005 only
in s1 (unpaired), 0000006 only in s2c (unpaired), 0000007 with a missing S2 band,
0000008 with an S1 band file holding two bands.

Run from anywhere: ``python tests/data/ssl4eo_s12/data.py``.
"""

import os
import shutil

import numpy as np
import rasterio
from rasterio.transform import from_origin

SIZE = 24  # 10 m grid (real data: 264)
SEASONS = 4
LOCATIONS = 4
S1_BANDS = ('VV', 'VH')
S2C_BANDS = (
    'B1',
    'B2',
    'B3',
    'B4',
    'B5',
    'B6',
    'B7',
    'B8',
    'B8A',
    'B9',
    'B10',
    'B11',
    'B12',
)
S2A_BANDS = tuple(b for b in S2C_BANDS if b != 'B10')
RES_DIVISOR = {
    'B1': 6,
    'B9': 6,
    'B10': 6,
    'B5': 2,
    'B6': 2,
    'B7': 2,
    'B8A': 2,
    'B11': 2,
    'B12': 2,
}
DATES = ('20200307T101031', '20200605T101559', '20200903T101031', '20201202T101409')
SATELLITES = ('S1A', 'S1B')

HERE = os.path.dirname(os.path.abspath(__file__))


def smooth_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """Spatially correlated noise in [0, 1] (real scenes are not white noise)."""
    coarse = rng.random((size // 4 + 2, size // 4 + 2))
    field = np.kron(coarse, np.ones((4, 4)))[:size, :size]
    return (field - field.min()) / (np.ptp(field) + 1e-9)


def write_band(path: str, array: np.ndarray, pixel_deg: float, bands: int = 1) -> None:
    """Write one GeoTIFF; ``bands`` > 1 writes a malformed multi-band file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    profile = {
        'driver': 'GTiff',
        'height': array.shape[0],
        'width': array.shape[1],
        'count': bands,
        'dtype': array.dtype,
        'crs': 'EPSG:4326',
        'transform': from_origin(11.0, 48.0, pixel_deg, pixel_deg),
    }
    with rasterio.open(path, 'w', **profile) as dst:
        for i in range(1, bands + 1):
            dst.write(array, i)


def write_s1(
    root: str, loc: str, rng: np.random.Generator, bad_count: bool = False
) -> None:
    for season, date in enumerate(DATES[:SEASONS]):
        # Sentinel-1A and -1B alternate, as in the real archive, so that name
        # order (all S1A before all S1B) differs from acquisition order.
        satellite = SATELLITES[season % len(SATELLITES)]
        stamp = (
            f'{satellite}_IW_GRDH_1SDV_{date}_{date}_03{season}904_03CFBA_D45{season}'
        )
        base = smooth_field(rng, SIZE)
        for band, (low, span) in zip(
            S1_BANDS, ((-25.0, 22.0), (-32.0, 24.0)), strict=True
        ):
            db = (low + span * base + rng.normal(0, 1.0, base.shape)).astype(np.float32)
            db[0, 0] = -np.inf  # zero backscatter
            db[1, 1] = np.nan
            write_band(
                os.path.join(root, 's1', loc, stamp, f'{band}.tif'),
                db,
                1e-4,
                bands=2 if bad_count and band == 'VH' else 1,
            )


def write_s2(
    root: str, product: str, loc: str, rng: np.random.Generator, skip: str | None = None
) -> None:
    bands = S2C_BANDS if product == 's2c' else S2A_BANDS
    for date in DATES[:SEASONS]:
        stamp = f'{date}_{date}_T32UPU'
        base = smooth_field(rng, SIZE)
        for i, band in enumerate(bands):
            if band == skip:
                continue
            div = RES_DIVISOR.get(band, 1)
            size = SIZE // div
            field = base[::div, ::div][:size, :size]
            dn = (
                300
                + 3000 * field * (0.5 + i / len(bands))
                + rng.normal(0, 50, field.shape)
            )
            if band == 'B10':
                dn = 5 + 40 * field
            write_band(
                os.path.join(root, product, loc, stamp, f'{band}.tif'),
                np.clip(dn, 0, 65535).astype(np.uint16),
                1e-4 * div,
            )


def main() -> None:
    rng = np.random.default_rng(0)
    for name in ('s1', 's2c', 's2a', 'invalid'):
        shutil.rmtree(os.path.join(HERE, name), ignore_errors=True)
    for i in range(LOCATIONS):
        loc = f'{i:07d}'
        write_s1(HERE, loc, rng)
        write_s2(HERE, 's2c', loc, rng)
        write_s2(HERE, 's2a', loc, rng)

    invalid = os.path.join(HERE, 'invalid')
    for i in range(2):  # two good locations so skipping leaves something
        loc = f'{i:07d}'
        write_s1(invalid, loc, rng)
        write_s2(invalid, 's2c', loc, rng)
    write_s1(invalid, '0000005', rng)
    write_s2(invalid, 's2c', '0000006', rng)
    write_s1(invalid, '0000007', rng)
    write_s2(invalid, 's2c', '0000007', rng, skip='B8A')
    write_s1(invalid, '0000008', rng, bad_count=True)
    write_s2(invalid, 's2c', '0000008', rng)


if __name__ == '__main__':
    main()
