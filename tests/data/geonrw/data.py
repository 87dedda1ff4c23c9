#!/usr/bin/env python3
"""Write a tiny GeoNRW fixture in the real on-disk layout (torchgeo's ``GeoNRW``).

Layout::

    <city>/<E>_<N>_rgb.jp2     3-band uint8 JPEG 2000 (lossless)
    <city>/<E>_<N>_dem.tif     1-band float32 heights in metres
    <city>/<E>_<N>_seg.tif     1-band uint8 classes 0-10 (0 = background)

Real images are 1000 x 1000 px at 1 m; these are SIZE x SIZE so that the 250 px
tiling of the reference becomes TILE px tiles (SIZE / TILE = 2 per side). Cities:
three from torchgeo's training list, one from its test list. The DEM is a smooth
terrain plus building blocks, the mask is derived from it (buildings, forest on
high ground, water in the lowest areas, background elsewhere), and the RGB is
coloured by class, so images, heights and labels are consistent.

``invalid/`` holds broken samples for error tests: a training image without its
DEM, and a test image of a different size than the others.

Run from anywhere: ``python tests/data/geonrw/data.py``.
"""

import os
import shutil

import numpy as np
from PIL import Image

SIZE = 64
TILE = 32
TRAIN_CITIES = ('aachen', 'bergisch', 'bielefeld')
TEST_CITIES = ('duesseldorf',)
IMAGES_PER_CITY = 2
# RGB colour per class (0 background, 1 forest, 2 water, 4 residential, 10 buildings)
COLOURS = {0: (120, 110, 100), 1: (40, 90, 40), 2: (30, 60, 120), 10: (180, 80, 70)}

HERE = os.path.dirname(os.path.abspath(__file__))


def smooth_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """Spatially correlated noise in [0, 1]."""
    coarse = rng.random((size // 8 + 2, size // 8 + 2))
    field = np.kron(coarse, np.ones((8, 8)))[:size, :size]
    return (field - field.min()) / (np.ptp(field) + 1e-9)


def write_image(folder: str, name: str, rng: np.random.Generator, size: int) -> None:
    """Write one RGB / DEM / mask triple (``dem=False`` skips the DEM)."""
    os.makedirs(folder, exist_ok=True)
    terrain = 50 + 40 * smooth_field(rng, size)
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[terrain > 80] = 1
    mask[terrain < 55] = 2
    dem = terrain.copy()
    for _ in range(3):
        r, c = rng.integers(0, size - 8, 2)
        dem[r : r + 6, c : c + 6] += 12
        mask[r : r + 6, c : c + 6] = 10
    rgb = np.zeros((size, size, 3), dtype=np.float64)
    for cls, colour in COLOURS.items():
        rgb[mask == cls] = colour
    rgb += rng.normal(0, 8, rgb.shape)
    base = os.path.join(folder, name)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(f'{base}_rgb.jp2')
    Image.fromarray(dem.astype(np.float32), mode='F').save(f'{base}_dem.tif')
    Image.fromarray(mask).save(f'{base}_seg.tif')


def main() -> None:
    rng = np.random.default_rng(0)
    for city in (*TRAIN_CITIES, *TEST_CITIES, 'invalid'):
        shutil.rmtree(os.path.join(HERE, city), ignore_errors=True)
    for city in (*TRAIN_CITIES, *TEST_CITIES):
        for i in range(IMAGES_PER_CITY):
            write_image(os.path.join(HERE, city), f'{290 + i}_{5640 + i}', rng, SIZE)
    invalid = os.path.join(HERE, 'invalid')
    write_image(os.path.join(invalid, 'aachen'), '290_5640', rng, SIZE)
    write_image(os.path.join(invalid, 'aachen'), '291_5641', rng, SIZE)
    os.remove(os.path.join(invalid, 'aachen', '291_5641_dem.tif'))
    write_image(os.path.join(invalid, 'duesseldorf'), '290_5640', rng, SIZE)
    write_image(os.path.join(invalid, 'duesseldorf'), '291_5641', rng, SIZE - TILE)


if __name__ == '__main__':
    main()
