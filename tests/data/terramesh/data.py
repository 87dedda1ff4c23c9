#!/usr/bin/env python3
"""Write tiny TerraMesh-layout shards: ``{split}/{MODALITY}/{source}_shard_{id}.tar``.

Each tar member is ``{source}_{split}_{index:07d}.zarr.zip``: a zip (stored, not
deflated) of a Zarr v2 group with consolidated metadata, written the way xarray
stores a Dataset: ``bands`` (time, band, y, x) with ``_ARRAY_DIMENSIONS``, the
``band``, ``time``, ``x`` and ``y`` coordinates (pixel centres, 10 m pixels, in
the UTM zone of the sample), ``spatial_ref`` holding that CRS as full WKT in its
``crs_wkt`` attribute (as rioxarray writes it), the scalar
``center_lat``/``center_lon`` and ``sample`` id, and a ``cloud_mask`` for the
optical modalities. ``majortom_*`` samples lie near 9 degrees E (UTM zone 32N),
``ssl4eos12_*`` samples near 15 degrees E (zone 33N), so a split mixes CRSs. As in the published dataset,
``majortom_*`` shards have S1RTC but no S1GRD and ``ssl4eos12_*`` shards the other
way round; every other modality folder has every shard, with the same samples in
the same order.

``invalid/`` holds broken variants for the error tests: in
``ssl4eos12_shard_000003.tar`` the S2L1C zip of the second sample has 12 bands
instead of 13, and the S2L1C tar of ``ssl4eos12_shard_000004.tar`` is cut in the
middle of its second sample.

``baselines/`` holds the same ground as three S2L1C products, one split each:
``pb0301`` acquired 2021-06-15 (processing baseline 03.01, no offset),
``pb0509`` acquired 2023-06-15 (baseline 05.09: every valid DN + 1000) and
``undated`` (time 0). Pixel (0, 0) of every band is 0 (no data) in all three.

Run from this folder: ``python data.py``.
"""

import io
import os
import shutil
import tarfile
import zipfile
from typing import Any

import numcodecs
import numpy as np
import zarr
from pyproj import CRS, Transformer
from zarr.storage import MemoryStore

SIZE = 8
S2L1C = [f'B{i:02d}' for i in range(1, 9)] + ['B8A', 'B09', 'B10', 'B11', 'B12']
BANDS = {
    'S1GRD': ['vv', 'vh'],
    'S1RTC': ['vv', 'vh'],
    'S2L1C': S2L1C,
    'DEM': ['DEM'],
}
# Stored dtypes: S-1 dB as float16, S-2 DN as int16, the DEM in metres as float32.
DTYPES = {
    'S1GRD': np.float16,
    'S1RTC': np.float16,
    'S2L1C': np.int16,
    'DEM': np.float32,
}
SOURCES = {'majortom': 'S1RTC', 'ssl4eos12': 'S1GRD'}
# split -> [(source, shard id, samples)]
SHARDS = {
    'train': [
        ('majortom', 1, 2),
        ('majortom', 2, 2),
        ('ssl4eos12', 3, 2),
        ('ssl4eos12', 4, 2),
    ],
    'val': [('majortom', 1, 1), ('ssl4eos12', 9, 1)],
}
#: Longitude of sample 0 per source; its UTM zone is the samples' CRS.
LON0 = {'majortom': 9.0, 'ssl4eos12': 15.0, 's2': 9.0}
RES = 10.0
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def values(modality: str, rng: np.random.Generator, bands: int) -> np.ndarray:
    if modality.startswith('S1'):
        data = rng.normal(-15, 4, (1, bands, SIZE, SIZE))
    elif modality.startswith('S2'):
        # Smooth DN (a per-band level plus small noise) compresses like real scenes.
        level = rng.integers(500, 4000, (1, bands, 1, 1))
        data = level + rng.integers(0, 16, (1, bands, SIZE, SIZE))
    else:
        data = rng.normal(300, 50, (1, bands, SIZE, SIZE))
    return data.astype(DTYPES[modality])


def zarr_zip(
    modality: str,
    sample: str,
    index: int,
    bands: list[str],
    seed: int,
    ns: int | None = None,
    offset: int = 0,
) -> bytes:
    rng = np.random.default_rng(seed)
    store_dict: dict[str, Any] = {}
    group = zarr.open_group(MemoryStore(store_dict), mode='w', zarr_format=2)
    zstd = numcodecs.Zstd(level=3)

    def array(name, data, dims, **attrs):
        a = group.create_array(
            name,
            shape=data.shape,
            dtype=data.dtype,
            chunks=data.shape if data.ndim else (),
            compressors=zstd if data.ndim else None,
            attributes={'_ARRAY_DIMENSIONS': dims, **attrs},
        )
        a[...] = data

    data = values(modality, rng, len(bands))
    if offset:  # the same ground as a baseline 04.00+ product: no data stays 0
        data[..., 0, 0] = 0
        data = np.where(data == 0, data, data + offset).astype(data.dtype)
    elif ns is not None:
        data[..., 0, 0] = 0
    array(
        'bands',
        data,
        ['time', 'band', 'y', 'x'],
        grid_mapping='spatial_ref',
    )
    array('band', np.array(bands), ['band'])
    # DEM has no acquisition time (stored as 0, like the published files).
    if ns is None:
        ns = (
            0
            if modality == 'DEM'
            else 1_588_471_637_000_000_000 + index * 86_400 * 10**9
        )
    array('time', np.array([ns], dtype=np.int64), ['time'], units='nanoseconds')
    lat = 45.0 + index * 0.01
    lon = LON0[sample.split('_')[0]] + index * 0.01
    crs = CRS.from_epsg(32600 + int((lon + 180) // 6) + 1)
    to_utm = Transformer.from_crs('EPSG:4326', crs, always_xy=True)
    # Pixel centres on a 10 m grid around the centre (xarray's x/y convention).
    cx, cy = (round(v / RES) * RES for v in to_utm.transform(lon, lat))
    offsets = RES * (np.arange(SIZE) - SIZE / 2 + 0.5)
    array('x', cx + offsets, ['x'])
    array('y', cy - offsets, ['y'])
    array('spatial_ref', np.array(0, dtype=np.int64), [], crs_wkt=crs.to_wkt())
    array('center_lat', np.array(lat), [])
    array('center_lon', np.array(lon), [])
    array('sample', np.array(sample), [])
    if modality.startswith('S2'):
        mask = (rng.random((SIZE, SIZE)) > 0.9).astype(np.uint8)
        array('cloud_mask', mask, ['y', 'x'])
    zarr.consolidate_metadata(group.store)

    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as zf:
        for key in sorted(store_dict):
            info = zipfile.ZipInfo(key, date_time=FIXED_TIME)
            zf.writestr(info, store_dict[key].to_bytes())
    return out.getvalue()


def write_tar(path: str, members: list[tuple[str, bytes]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, 'w', format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


def shard_members(
    split: str, source: str, shard: int, count: int, modality: str, start: int
) -> list[tuple[str, bytes]]:
    members = []
    for i in range(count):
        index = start + i
        sample = f'{source}_{split}_{index:07d}'
        seed = int.from_bytes(f'{split}{index}{modality}'.encode()[-8:], 'little')
        data = zarr_zip(modality, sample, index, BANDS[modality], seed)
        members.append((f'{sample}.zarr.zip', data))
    return members


def write_split(root: str, split: str) -> None:
    start = 0
    for source, shard, count in SHARDS[split]:
        name = f'{source}_shard_{shard:06d}.tar'
        for modality in BANDS:
            if modality.startswith('S1') and SOURCES[source] != modality:
                continue
            members = shard_members(split, source, shard, count, modality, start)
            write_tar(os.path.join(root, split, modality, name), members)
        start += count


def write_invalid(root: str) -> None:
    # Shard 3: the second S2L1C sample lacks a band (12 of 13).
    members = {
        m: shard_members('train', 'ssl4eos12', 3, 3, m, 100) for m in ('S1GRD', 'S2L1C')
    }
    name, _ = members['S2L1C'][1]
    sample = name.removesuffix('.zarr.zip')
    members['S2L1C'][1] = (
        name,
        zarr_zip('S2L1C', sample, 101, BANDS['S2L1C'][:-1], 7),
    )
    for m, mem in members.items():
        write_tar(os.path.join(root, 'train', m, 'ssl4eos12_shard_000003.tar'), mem)
    # Shard 4: the S2L1C tar ends in the middle of its second sample.
    for m in ('S1GRD', 'S2L1C'):
        mem = shard_members('train', 'ssl4eos12', 4, 3, m, 200)
        path = os.path.join(root, 'train', m, 'ssl4eos12_shard_000004.tar')
        write_tar(path, mem)
        if m == 'S2L1C':
            cut = 512 + len(mem[0][1]) + (-len(mem[0][1])) % 512 + 512 + 1000
            with open(path, 'r+b') as f:
                f.truncate(cut)


#: Acquisition times (ns) and DN offsets of the baselines/ splits.
BASELINES = {
    'pb0301': (1_623_751_200_000_000_000, 0),  # 2021-06-15T10:00Z
    'pb0509': (1_686_823_200_000_000_000, 1000),  # 2023-06-15T10:00Z
    'undated': (0, 0),
}


def write_baselines(root: str) -> None:
    for split, (ns, offset) in BASELINES.items():
        members = []
        for index in range(2):
            sample = f's2_{split}_{index:07d}'
            data = zarr_zip('S2L1C', sample, index, S2L1C, 40 + index, ns, offset)
            members.append((f'{sample}.zarr.zip', data))
        write_tar(os.path.join(root, split, 'S2L1C', 's2_shard_000000.tar'), members)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for split in SHARDS:
        shutil.rmtree(os.path.join(here, split), ignore_errors=True)
        write_split(here, split)
    shutil.rmtree(os.path.join(here, 'invalid'), ignore_errors=True)
    write_invalid(os.path.join(here, 'invalid'))
    shutil.rmtree(os.path.join(here, 'baselines'), ignore_errors=True)
    write_baselines(os.path.join(here, 'baselines'))


if __name__ == '__main__':
    main()
