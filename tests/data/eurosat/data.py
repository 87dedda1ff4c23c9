#!/usr/bin/env python3
"""Write a tiny EuroSAT (multispectral) fixture in the real on-disk layout.

Layout (as torchgeo's ``EuroSAT`` reads the extracted ``EuroSATallBands.zip``)::

    ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/<Class>_<n>.tif
    eurosat-{train,val,test}.txt     one ``<Class>_<n>.jpg`` name per line

Each GeoTIFF holds the 13 Sentinel-2 L1C bands as uint16 DN in the files' band order
(B01-B08, B09, B10, B11, B12, B8A: torchgeo's ``EuroSAT.all_band_names``), UTM
grid at 10 m. The real patches are 64 x 64; these are 16 x 16. One image per class
and split.

Run from anywhere: ``python tests/data/eurosat/data.py``.
"""

import os
import shutil

import numpy as np
import rasterio
from rasterio.transform import from_origin

SIZE = 16
CLASSES = (
    'AnnualCrop',
    'Forest',
    'HerbaceousVegetation',
    'Highway',
    'Industrial',
    'Pasture',
    'PermanentCrop',
    'Residential',
    'River',
    'SeaLake',
)
SPLITS = ('train', 'val', 'test')
# Typical L1C DN per band, in file order (B01 ... B12, B8A).
MEAN = (1354, 1118, 1043, 948, 1199, 2000, 2369, 2297, 732, 12, 1819, 1119, 2594)
STD = (246, 333, 395, 594, 566, 861, 1087, 1118, 405, 5, 1003, 761, 1232)
BASE = os.path.join('ds', 'images', 'remote_sensing', 'otherDatasets', 'sentinel_2')


def main() -> None:
    """Write the fixture next to this script."""
    root = os.path.dirname(os.path.abspath(__file__))
    shutil.rmtree(os.path.join(root, 'ds'), ignore_errors=True)
    rng = np.random.default_rng(0)
    names: dict[str, list[str]] = {split: [] for split in SPLITS}
    for c, name in enumerate(CLASSES):
        directory = os.path.join(root, BASE, 'tif', name)
        os.makedirs(directory)
        for i, split in enumerate(SPLITS, start=1):
            shift = 0.5 * (c - len(CLASSES) / 2) / len(CLASSES)
            data = np.stack(
                [
                    rng.normal(m * (1 + shift), s / 2, (SIZE, SIZE))
                    for m, s in zip(MEAN, STD, strict=True)
                ]
            )
            data = np.clip(data, 1, 28000).astype(np.uint16)
            profile = {
                'driver': 'GTiff',
                'dtype': 'uint16',
                'count': len(MEAN),
                'height': SIZE,
                'width': SIZE,
                'crs': 'EPSG:32631',
                'transform': from_origin(500000 + 1000 * c, 5600000, 10, 10),
            }
            with rasterio.open(
                os.path.join(directory, f'{name}_{i}.tif'), 'w', **profile
            ) as f:
                f.write(data)
            names[split].append(f'{name}_{i}.jpg')
    for split in SPLITS:
        with open(os.path.join(root, f'eurosat-{split}.txt'), 'w') as f:
            f.write('\n'.join(names[split]) + '\n')


if __name__ == '__main__':
    main()
