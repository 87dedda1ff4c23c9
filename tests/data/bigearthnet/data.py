#!/usr/bin/env python3
"""Write tiny BigEarthNet fixtures in the real on-disk layouts.

v1 (torchgeo's ``BigEarthNet``; the BigEarthNet-S1 v1.0 / BigEarthNet v1.0
archives)::

    v1/BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_{VV,VH}.tif            float32 dB
    v1/BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_labels_metadata.json   labels + S2 partner
    v1/BigEarthNet-v1.0/<S2 patch>/<S2 patch>_B{01..12,8A}.tif          uint16 DN (no B10)
    v1/BigEarthNet-v1.0/<S2 patch>/<S2 patch>_labels_metadata.json
    v1/bigearthnet-{train,val,test}.csv                                 lines "S2 patch,S1 patch"

Bands keep their native grids like the real files (10 m: SIZE px, 20 m: SIZE/2,
60 m: SIZE/6; real data: 120/60/20), one band per GeoTIFF in UTM. Labels use the
43-class CORINE names of the real label files (some of which have no 19-class
counterpart and are dropped by the 19-class mapping).

``v1/invalid/`` has the same layout with broken samples for error tests: its train
split pairs an S1 patch with the wrong S2 patch, its val split names a patch with a
missing band file, its test split names an S2 patch that does not exist.

v2 (torchgeo's ``BigEarthNetV2``, reBEN)::

    v2/BigEarthNet-S1/<S1 tile>/<S1 patch>/<S1 patch>_{VV,VH}.tif
    v2/BigEarthNet-S2/<S2 tile>/<S2 patch>/<S2 patch>_B*.tif
    v2/Reference_Maps/<S2 tile>/<S2 patch>/<S2 patch>_reference_map.tif  uint16 CLC codes
    v2/metadata.parquet                                                 patch table

The v2 patch table is written as ``metadata.parquet`` with pyarrow, as the real
one is (a list of label names per patch).

Run from anywhere: ``python tests/data/bigearthnet/data.py``.
"""

import json
import os
import shutil

import numpy as np
import pandas as pd
import rasterio
from rasterio.transform import from_origin

SIZE = 12  # 10 m grid (real data: 120)
S1_BANDS = ('VV', 'VH')
S2_BANDS = (
    'B01',
    'B02',
    'B03',
    'B04',
    'B05',
    'B06',
    'B07',
    'B08',
    'B8A',
    'B09',
    'B11',
    'B12',
)
RES_DIVISOR = {
    'B01': 6,
    'B09': 6,
    'B05': 2,
    'B06': 2,
    'B07': 2,
    'B8A': 2,
    'B11': 2,
    'B12': 2,
}
LABELS = (
    'Non-irrigated arable land',
    'Pastures',
    'Coniferous forest',
    'Mixed forest',
    'Broad-leaved forest',
    'Water bodies',
    'Discontinuous urban fabric',
    'Transitional woodland/shrub',
    'Sea and ocean',
    'Peatbogs',
    'Bare rock',  # no 19-class counterpart
    'Burnt areas',  # no 19-class counterpart
)
CLC_CODES = (211, 231, 312, 313, 311, 512, 112, 324, 523, 412)
SPLITS = {'train': 6, 'val': 3, 'test': 3}

HERE = os.path.dirname(os.path.abspath(__file__))


def smooth_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """Spatially correlated noise in [0, 1] (real scenes are not white noise)."""
    coarse = rng.random((size // 3 + 2, size // 3 + 2))
    field = np.kron(coarse, np.ones((3, 3)))[:size, :size]
    return (field - field.min()) / (np.ptp(field) + 1e-9)


def write_tif(path: str, array: np.ndarray, pixel: float) -> None:
    """Write a single-band GeoTIFF in UTM 33N."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    profile = {
        'driver': 'GTiff',
        'height': array.shape[0],
        'width': array.shape[1],
        'count': 1,
        'dtype': array.dtype,
        'crs': 'EPSG:32633',
        'transform': from_origin(404400, 5342400, pixel, pixel),
    }
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(array, 1)


def write_s1(folder: str, rng: np.random.Generator) -> None:
    """VV and VH backscatter in dB (VV brighter than VH, like real scenes)."""
    name = os.path.basename(folder)
    for band, mean in (('VV', -12.0), ('VH', -19.0)):
        field = mean + 8 * (smooth_field(rng, SIZE) - 0.5)
        field += rng.normal(0, 1.0, field.shape)
        write_tif(
            os.path.join(folder, f'{name}_{band}.tif'), field.astype('float32'), 10
        )


def write_s2(folder: str, rng: np.random.Generator, skip: str | None = None) -> None:
    """The 12 L2A bands on their native grids, uint16 DN."""
    name = os.path.basename(folder)
    for i, band in enumerate(S2_BANDS):
        if band == skip:
            continue
        size = SIZE // RES_DIVISOR.get(band, 1)
        field = 300 + 250 * i + 2500 * smooth_field(rng, size)
        pixel = 10 * RES_DIVISOR.get(band, 1)
        write_tif(
            os.path.join(folder, f'{name}_{band}.tif'), field.astype('uint16'), pixel
        )


def labels_for(rng: np.random.Generator) -> list[str]:
    """One to three label names."""
    k = int(rng.integers(1, 4))
    return [LABELS[i] for i in sorted(rng.choice(len(LABELS), k, replace=False))]


def write_json(path: str, content: dict[str, object]) -> None:
    """Write a label file like BigEarthNet's (labels, coordinates, ...)."""
    content = {
        **content,
        'coordinates': {'ulx': 404400, 'uly': 5342400, 'lrx': 405600, 'lry': 5341200},
        'projection': 'EPSG:32633',
    }
    with open(path, 'w') as f:
        json.dump(content, f)


def v1_patch(
    root: str,
    index: int,
    rng: np.random.Generator,
    partner: str | None = None,
    skip_band: str | None = None,
) -> tuple[str, str]:
    """Write one S1/S2 pair; return ``(s2 name, s1 name)``."""
    r, c = divmod(index, 10)
    s2 = f'S2A_MSIL2A_20170613T101031_{40 + r}_{c}'
    s1 = f'S1A_IW_GRDH_1SDV_20170613T165043_33UUP_{40 + r}_{c}'
    labels = labels_for(rng)
    s1_folder = os.path.join(root, 'BigEarthNet-S1-v1.0', s1)
    s2_folder = os.path.join(root, 'BigEarthNet-v1.0', s2)
    write_s1(s1_folder, rng)
    write_s2(s2_folder, rng, skip=skip_band)
    write_json(
        os.path.join(s1_folder, f'{s1}_labels_metadata.json'),
        {
            'labels': labels,
            'corresponding_s2_patch': partner or s2,
            'scene_source': 'S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108',
            'acquisition_time': '2017-06-13T16:50:43',
        },
    )
    write_json(
        os.path.join(s2_folder, f'{s2}_labels_metadata.json'),
        {
            'labels': labels,
            'tile_source': 'S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP',
            'acquisition_date': '2017-06-13 10:10:31',
        },
    )
    return s2, s1


def write_split(root: str, split: str, pairs: list[tuple[str, str]]) -> None:
    """Write a split file like torchgeo's: one ``S2,S1`` line per pair."""
    with open(os.path.join(root, f'bigearthnet-{split}.csv'), 'w') as f:
        f.writelines(f'{s2},{s1}\n' for s2, s1 in pairs)


def write_v1(root: str, rng: np.random.Generator) -> None:
    """The valid v1 fixture."""
    index = 0
    for split, count in SPLITS.items():
        pairs = []
        for _ in range(count):
            pairs.append(v1_patch(root, index, rng))
            index += 1
        write_split(root, split, pairs)


def write_v1_invalid(root: str, rng: np.random.Generator) -> None:
    """Broken v1 samples (see the module docstring)."""
    s2_a, s1_a = v1_patch(root, 0, rng)
    _, s1_b = v1_patch(root, 1, rng)
    write_split(root, 'train', [(s2_a, s1_a), (s2_a, s1_b)])  # 2nd: wrong partner
    s2_c, s1_c = v1_patch(root, 2, rng, skip_band='B8A')
    write_split(root, 'val', [(s2_c, s1_c)])
    write_split(root, 'test', [('S2A_MSIL2A_20170613T101031_99_99', s1_a)])


def write_v2(root: str, rng: np.random.Generator) -> None:
    """A three-patch v2 tree (one per split) and its patch table."""
    rows = []
    for i, split in enumerate(('train', 'validation', 'test')):
        s2_tile = 'S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP'
        s1_tile = 'S1A_IW_GRDH_1SDV_20170613T165043'
        patch = f'{s2_tile}_26_{57 + i}'
        s1 = f'{s1_tile}_33UUP_26_{57 + i}'
        write_s1(os.path.join(root, 'BigEarthNet-S1', s1_tile, s1), rng)
        write_s2(os.path.join(root, 'BigEarthNet-S2', s2_tile, patch), rng)
        codes = rng.choice(CLC_CODES, size=(SIZE, SIZE)).astype('uint16')
        write_tif(
            os.path.join(
                root, 'Reference_Maps', s2_tile, patch, f'{patch}_reference_map.tif'
            ),
            codes,
            10,
        )
        names = [
            'Arable land',
            'Pastures',
            'Coniferous forest',
            'Inland waters',
            'Urban fabric',
        ]
        k = int(rng.integers(1, 4))
        labels = [names[j] for j in sorted(rng.choice(len(names), k, replace=False))]
        rows.append(
            {
                'patch_id': patch,
                'labels': labels,
                'split': split,
                'country': 'Austria',
                's1_name': s1,
                's2v1_name': f'S2A_MSIL2A_20170613T101031_26_{57 + i}',
                'contains_seasonal_snow': False,
                'contains_cloud_or_shadow': False,
            }
        )
    table = pd.DataFrame(rows)
    # The real patch table is parquet; pyarrow is a dependency of the package.
    table.to_parquet(os.path.join(root, 'metadata.parquet'), engine='pyarrow')


def main() -> None:
    rng = np.random.default_rng(0)
    for sub in ('v1', 'v2'):
        shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)
    write_v1(os.path.join(HERE, 'v1'), rng)
    write_v1_invalid(os.path.join(HERE, 'v1', 'invalid'), rng)
    write_v2(os.path.join(HERE, 'v2'), rng)


if __name__ == '__main__':
    main()
