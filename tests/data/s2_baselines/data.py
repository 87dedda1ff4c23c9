#!/usr/bin/env python3
"""Write the same Sentinel-2 ground as products before and after baseline 04.00.

Since processing baseline 04.00 (2022-01-25) Sentinel-2 DN carry a +1000 offset
(reflectance = (DN - 1000) / 10000), DN 0 still meaning no data. Every file here
holds the same 13-band L1C ground (uint16, 32 x 32 px, EPSG:32632, 10 m, nodata
0, the 2 x 2 north-west corner 0), stored as:

    pb0301/S2B_MSIL1C_20210615T103629_N0301_R008_T32UMV_20210615T124500.tif
        2021, baseline 03.01: the DN as they are (no offset)
    pb0509/S2B_MSIL1C_20230615T103629_N0509_R008_T32UMV_20230615T124500.tif
        2023, baseline 05.09: every valid DN + 1000
    dated/T32UMV_20230615T103629.tif
        + 1000; only the acquisition date in the name tells
    tagged/s2_tagged.tif
        + 1000; no date or baseline in the name, ``BOA_ADD_OFFSET=-1000`` tag
    mosaic/west_..._N0301_....tif, mosaic/east_..._N0509_....tif
        the west half as the 2021 product, the east half as the 2023 one
    undated/s2.tif
        the DN as they are, nothing tells the baseline

Run from anywhere: ``python tests/data/s2_baselines/data.py``.
"""

import os
import shutil

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 32
BANDS = 13
OLD = 'S2B_MSIL1C_20210615T103629_N0301_R008_T32UMV_20210615T124500'
NEW = 'S2B_MSIL1C_20230615T103629_N0509_R008_T32UMV_20230615T124500'
WEST, NORTH = 500_000.0, 5_400_000.0


def ground() -> np.ndarray:
    """Pre-offset DN (13, 32, 32): dark water to bright soil, corner no data."""
    rng = np.random.default_rng(0)
    level = np.linspace(50, 3000, BANDS)[:, None, None]
    texture = rng.integers(0, 400, (BANDS, SIZE, SIZE))
    data = (level + texture).astype(np.uint16)
    data[:, :2, :2] = 0
    return data


def offset(data: np.ndarray) -> np.ndarray:
    return np.where(data == 0, data, data + 1000).astype(np.uint16)


def write(
    path: str, data: np.ndarray, west: float = WEST, tags: dict[str, str] | None = None
) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    profile = {
        'driver': 'GTiff',
        'height': data.shape[1],
        'width': data.shape[2],
        'count': data.shape[0],
        'dtype': 'uint16',
        'crs': 'EPSG:32632',
        'transform': from_origin(west, NORTH, 10.0, 10.0),
        'nodata': 0,
    }
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)


def main() -> None:
    for folder in ('pb0301', 'pb0509', 'dated', 'tagged', 'mosaic', 'undated'):
        shutil.rmtree(os.path.join(HERE, folder), ignore_errors=True)
    old = ground()
    new = offset(old)
    half = SIZE // 2
    write(os.path.join(HERE, 'pb0301', f'{OLD}.tif'), old)
    write(os.path.join(HERE, 'pb0509', f'{NEW}.tif'), new)
    write(os.path.join(HERE, 'dated', 'T32UMV_20230615T103629.tif'), new)
    write(
        os.path.join(HERE, 'tagged', 's2_tagged.tif'),
        new,
        tags={'BOA_ADD_OFFSET': '-1000'},
    )
    write(os.path.join(HERE, 'mosaic', f'west_{OLD}.tif'), old[:, :, :half])
    write(
        os.path.join(HERE, 'mosaic', f'east_{NEW}.tif'),
        new[:, :, half:],
        west=WEST + 10.0 * half,
    )
    write(os.path.join(HERE, 'undated', 's2.tif'), old)


if __name__ == '__main__':
    main()
