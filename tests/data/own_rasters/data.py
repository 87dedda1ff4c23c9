#!/usr/bin/env python3
"""Write tiny GeoTIFFs of one region in three CRSs and resolutions.

What a user's own data looks like: scenes of different sensors, each in its own
CRS and grid, overlapping on the ground but not on the same extent.

    s1/s1_grd.tif    2 bands float32 (VV, VH in dB), EPSG:4326, 0.0005° x 0.0003°
    s2/s2_l1c.tif    13 bands uint16 (L1C DN), EPSG:32632 (UTM 32N), 30 m, nodata 0
    dem/dem.tif      1 band float32 (metres), EPSG:3035 (LAEA Europe), 50 m

Every raster samples the same ground pattern ``pattern(E, N)`` (a function of the
EPSG:3035 coordinates of each pixel centre: two crossed waves of 400-700 m plus a
bump), scaled and offset per band, so after reprojection to any common grid the
modalities agree pixel for pixel up to resampling, and a misregistration by a few
pixels destroys the agreement. The region lies near Stuttgart (about 9.10-9.14° E,
48.70-48.73° N).

Run from anywhere: ``python tests/data/own_rasters/data.py``.
"""

import os
from collections.abc import Callable

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

HERE = os.path.dirname(os.path.abspath(__file__))

#: Ground-truth frame of the pattern.
PATTERN_CRS = 'EPSG:3035'


def pattern(e: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The ground pattern in [-1.5, 1.5] at EPSG:3035 coordinates (metres)."""
    waves = np.sin(2 * np.pi * e / 530.0) * np.cos(2 * np.pi * n / 710.0)
    bump = np.exp(-(((e - 4256200.0) ** 2 + (n - 2845200.0) ** 2) / (2 * 600.0**2)))
    return waves + 0.5 * bump


def ground(crs: str, transform: rasterio.Affine, width: int, height: int) -> np.ndarray:
    """The pattern at the pixel centres of a grid (height, width)."""
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    xs, ys = rasterio.transform.xy(transform, rows.ravel(), cols.ravel(), offset='ul')
    to_pattern = Transformer.from_crs(crs, PATTERN_CRS, always_xy=True)
    e, n = to_pattern.transform(np.asarray(xs), np.asarray(ys))
    return pattern(np.asarray(e), np.asarray(n)).reshape(height, width)


def write_raster(
    path: str,
    crs: str,
    west: float,
    north: float,
    res: tuple[float, float],
    size: tuple[int, int],
    bands: Callable[[np.ndarray], np.ndarray],
    dtype: str,
    nodata: float | None = None,
) -> None:
    """Write one GeoTIFF whose bands are a function of the ground pattern.

    Args:
        path: Output file.
        crs: Its CRS.
        west: x of the west edge (CRS units).
        north: y of the north edge.
        res: (x, y) pixel size in CRS units.
        size: (width, height) in pixels.
        bands: Maps the pattern (H, W) to the bands (C, H, W).
        dtype: Storage dtype.
        nodata: Nodata value written into the file, if any.
    """
    transform = from_origin(west, north, res[0], res[1])
    data = bands(ground(crs, transform, *size)).astype(dtype)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    profile = {
        'driver': 'GTiff',
        'width': size[0],
        'height': size[1],
        'count': data.shape[0],
        'dtype': dtype,
        'crs': crs,
        'transform': transform,
        'compress': 'deflate',
        'predictor': 3 if dtype.startswith('float') else 2,
        'nodata': nodata,
    }
    tmp = path + '.tmp'
    with rasterio.open(tmp, 'w', **profile) as dst:
        dst.write(data)
    os.replace(tmp, path)


def s1_bands(f: np.ndarray) -> np.ndarray:
    """VV and VH backscatter in dB."""
    return np.stack([-12.0 + 4.0 * f, -19.0 + 3.0 * f])


def s2_bands(f: np.ndarray) -> np.ndarray:
    """13 L1C bands, DN ~ 1000-3000, each with its own gain and offset."""
    return np.stack([1200.0 + 90.0 * b + (300.0 + 20.0 * b) * f for b in range(13)])


def dem_bands(f: np.ndarray) -> np.ndarray:
    """Heights in metres."""
    return (310.0 + 40.0 * f)[None]


def main() -> None:
    """Write the three rasters."""
    # S1: geographic grid, 100 x 120 px of 0.0005° x 0.0003° (~37 m x 33 m).
    write_raster(
        os.path.join(HERE, 's1', 's1_grd.tif'),
        'EPSG:4326',
        9.095,
        48.735,
        (0.0005, 0.0003),
        (100, 120),
        s1_bands,
        'float32',
        nodata=-9999.0,
    )
    # S2: UTM 32N, 30 m, shifted against S1 so the extents differ.
    write_raster(
        os.path.join(HERE, 's2', 's2_l1c.tif'),
        'EPSG:32632',
        507000.0,
        5398500.0,
        (30.0, 30.0),
        (110, 110),
        s2_bands,
        'uint16',
        nodata=0,
    )
    # DEM: LAEA Europe, 50 m.
    write_raster(
        os.path.join(HERE, 'dem', 'dem.tif'),
        'EPSG:3035',
        4254600.0,
        2847000.0,
        (50.0, 50.0),
        (70, 70),
        dem_bands,
        'float32',
        nodata=-32768.0,
    )


if __name__ == '__main__':
    main()
