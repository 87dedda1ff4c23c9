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

Every location is one scene: a smooth land-cover map of a few classes (water,
forest, cropland, built-up, bare soil), each class with a Sentinel-2 spectral
signature and a Sentinel-1 VV/VH backscatter level. All timestamps and both
sensors render that same map, with a small seasonal change (vegetation greens up
and dries out), per-pixel noise on S2 and multiplicative speckle on S1, so the
cross-modal and cross-season views share content a model can learn (the
quickstart's validation loss falls on it). The locations differ in their class
mix.

``quickstart/`` holds 16 locations in the same layout (``s1`` and ``s2c`` only),
the sample the quickstart config trains on; its first four locations equal the
fixture's.

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
LOCATIONS = 4  # the test fixture
QUICKSTART_LOCATIONS = 16  # the quickstart's sample under quickstart/
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

# Land-cover classes of the scenes: S2 L1C top-of-atmosphere DN per band (in
# S2C_BANDS order), S1 backscatter (VV, VH) in dB, and how strongly the class
# follows the vegetation season (0: not at all).
CLASSES = {
    'water': (
        (1500, 1200, 1000, 700, 600, 500, 450, 400, 380, 150, 10, 150, 100),
        (-22.0, -29.0),
        0.0,
    ),
    'forest': (
        (1300, 1000, 900, 650, 1000, 2200, 2700, 2900, 3000, 900, 15, 1500, 700),
        (-8.0, -14.0),
        0.4,
    ),
    'cropland': (
        (1400, 1100, 1200, 1000, 1500, 2600, 3100, 3300, 3400, 1000, 15, 2200, 1200),
        (-11.0, -18.0),
        1.0,
    ),
    'built-up': (
        (1700, 1600, 1600, 1700, 1800, 2000, 2100, 2200, 2250, 800, 25, 2600, 2200),
        (-3.0, -10.0),
        0.0,
    ),
    'bare soil': (
        (1600, 1500, 1700, 2100, 2400, 2600, 2700, 2800, 2900, 900, 20, 3300, 2700),
        (-14.0, -23.0),
        0.1,
    ),
}
# Vegetation season per timestamp (March, June, September, December): scales the
# red-edge/NIR reflectance and shifts the VH backscatter of vegetated classes.
GREENNESS = (-0.10, 0.15, 0.05, -0.20)
# Atmospheric correction as a per-band offset: L2A = L1C - offset (DN).
L2A_OFFSET = (700, 500, 300, 200, 150, 100, 100, 100, 100, 100, 0, 50, 50)

HERE = os.path.dirname(os.path.abspath(__file__))


def smooth_field(rng: np.random.Generator, size: int, cells: int = 4) -> np.ndarray:
    """Spatially smooth noise in [0, 1]: a coarse random grid, bilinearly upsampled.

    Args:
        rng: Random generator.
        size: Side length (px).
        cells: Coarse grid cells per side.

    Returns:
        (size, size) float64 array.
    """
    coarse = rng.random((cells + 1, cells + 1))
    at = np.linspace(0, cells, size)
    rows = np.stack([np.interp(at, np.arange(cells + 1), c) for c in coarse])
    field = np.stack([np.interp(at, np.arange(cells + 1), r) for r in rows.T], 1)
    return (field - field.min()) / (np.ptp(field) + 1e-9)


def scene(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A land-cover map: the class whose (location-biased) smooth field is highest.

    Args:
        rng: Random generator.
        size: Side length (px).

    Returns:
        (size, size) int array of indices into ``CLASSES``.
    """
    bias = rng.dirichlet(np.ones(len(CLASSES)))  # the location's class mix
    fields = np.stack([smooth_field(rng, size) + 0.5 * b for b in bias])
    return fields.argmax(0)


def block_mean(array: np.ndarray, div: int) -> np.ndarray:
    """Average ``div`` x ``div`` blocks (a coarser band grid of the same area)."""
    size = array.shape[0] // div
    return array[: size * div, : size * div].reshape(size, div, size, div).mean((1, 3))


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
    root: str,
    loc: str,
    land: np.ndarray,
    rng: np.random.Generator,
    bad_count: bool = False,
) -> None:
    """Write the VV and VH GeoTIFFs of every timestamp of one location.

    Args:
        root: Fixture root.
        loc: Location folder name.
        land: The location's land-cover map (SIZE, SIZE).
        rng: Random generator (speckle).
        bad_count: Write VH with two bands (a malformed file).
    """
    levels = np.array([c[1] for c in CLASSES.values()])  # (classes, 2) dB
    season_weight = np.array([c[2] for c in CLASSES.values()])
    for season, date in enumerate(DATES[:SEASONS]):
        # Sentinel-1A and -1B alternate, as in the real archive, so that name
        # order (all S1A before all S1B) differs from acquisition order.
        satellite = SATELLITES[season % len(SATELLITES)]
        stamp = (
            f'{satellite}_IW_GRDH_1SDV_{date}_{date}_03{season}904_03CFBA_D45{season}'
        )
        for b, band in enumerate(S1_BANDS):
            # Vegetation volume scattering rises with the season, mostly in VH.
            shift = (1 + 3 * b) * GREENNESS[season] * season_weight[land]
            db = levels[land, b] + shift
            # Multiplicative speckle of a 4-look intensity image.
            speckle = rng.gamma(4.0, 1 / 4.0, land.shape)
            db = (db + 10 * np.log10(speckle)).astype(np.float32)
            db[0, 0] = -np.inf  # zero backscatter
            db[1, 1] = np.nan
            write_band(
                os.path.join(root, 's1', loc, stamp, f'{band}.tif'),
                db,
                1e-4,
                bands=2 if bad_count and band == 'VH' else 1,
            )


def write_s2(
    root: str,
    product: str,
    loc: str,
    land: np.ndarray,
    rng: np.random.Generator,
    skip: str | None = None,
) -> None:
    """Write the band GeoTIFFs of every timestamp of one location and product.

    Args:
        root: Fixture root.
        product: ``'s2c'`` (L1C) or ``'s2a'`` (L2A).
        loc: Location folder name.
        land: The location's land-cover map (SIZE, SIZE).
        rng: Random generator (noise).
        skip: A band not to write (a broken location).
    """
    signatures = np.array([c[0] for c in CLASSES.values()], dtype=float)
    season_weight = np.array([c[2] for c in CLASSES.values()])
    offset = np.array(L2A_OFFSET, dtype=float) if product == 's2a' else 0.0
    signatures = signatures - offset
    # Red-edge and NIR bands (B6, B7, B8, B8A) follow the vegetation season.
    nir = np.array([b in ('B6', 'B7', 'B8', 'B8A') for b in S2C_BANDS])
    for season, date in enumerate(DATES[:SEASONS]):
        stamp = f'{date}_{date}_T32UPU'
        gain = 1 + GREENNESS[season] * season_weight[land]  # (SIZE, SIZE)
        for band in S2C_BANDS if product == 's2c' else S2A_BANDS:
            if band == skip:
                continue
            i = S2C_BANDS.index(band)
            dn = signatures[land, i] * (gain if nir[i] else 1.0)
            dn = dn * (1 + rng.normal(0, 0.03, land.shape))  # sensor noise
            div = RES_DIVISOR.get(band, 1)
            dn = block_mean(dn, div)
            write_band(
                os.path.join(root, product, loc, stamp, f'{band}.tif'),
                np.clip(np.round(dn), 0, 65535).astype(np.uint16),
                1e-4 * div,
            )


def write_location(
    root: str,
    loc: str,
    rng: np.random.Generator,
    products: tuple[str, ...] = ('s1', 's2c', 's2a'),
    skip: str | None = None,
    bad_count: bool = False,
) -> None:
    """Draw one scene and write it for the given products.

    Args:
        root: Fixture root.
        loc: Location folder name.
        rng: Random generator.
        products: Which of ``'s1'``, ``'s2c'``, ``'s2a'`` to write.
        skip: An S2 band not to write.
        bad_count: Write a malformed S1 VH file.
    """
    land = scene(rng)
    if 's1' in products:
        write_s1(root, loc, land, rng, bad_count=bad_count)
    for product in ('s2c', 's2a'):
        if product in products:
            write_s2(root, product, loc, land, rng, skip=skip)


def main() -> None:
    """Write the fixture and the quickstart sample (replacing the previous ones)."""
    for name in ('s1', 's2c', 's2a', 'invalid', 'quickstart'):
        shutil.rmtree(os.path.join(HERE, name), ignore_errors=True)
    # The quickstart needs more locations than the tests: with four, a batch holds
    # too few samples for the cross-correlation to generalise to validation.
    rng = np.random.default_rng(0)
    for i in range(QUICKSTART_LOCATIONS):
        write_location(os.path.join(HERE, 'quickstart'), f'{i:07d}', rng, ('s1', 's2c'))
    rng = np.random.default_rng(0)
    for i in range(LOCATIONS):
        write_location(HERE, f'{i:07d}', rng)

    invalid = os.path.join(HERE, 'invalid')
    for i in range(2):  # two good locations so skipping leaves something
        write_location(invalid, f'{i:07d}', rng, ('s1', 's2c'))
    write_location(invalid, '0000005', rng, ('s1',))
    write_location(invalid, '0000006', rng, ('s2c',))
    write_location(invalid, '0000007', rng, ('s1', 's2c'), skip='B8A')
    write_location(invalid, '0000008', rng, ('s1', 's2c'), bad_count=True)


if __name__ == '__main__':
    main()
