"""Corrupt, truncated and non-GeoTIFF band files: clear errors, or skipped up front."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from torchgeo_decur.cli.cache_ssl4eo_s12 import write_cache
from torchgeo_decur.datasets import SSL4EOS12Pairs
from torchgeo_decur.datasets.rasters import RasterReadError, read_band

from ..conftest import DATA, SSL4EO_S12_LOCATIONS

ROOT = os.path.join(DATA, 'ssl4eo_s12')


def first_stamp(root: Path, product: str, location: str) -> Path:
    """The first timestamp folder (by name) of a location."""
    return sorted((root / product / location).iterdir())[0]


def corrupt_copy(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """Copy the S1/S2 L1C fixture and damage one file in three of its locations.

    Returns:
        The root and ``{location: damaged file}``: 0000000 has a truncated S1 VV
        file (opens, fails to read), 0000001 a text file named B2.tif, 0000002 an
        empty B11.tif.
    """
    root = tmp_path / 'ssl4eo'
    for product in ('s1', 's2c'):
        shutil.copytree(os.path.join(ROOT, product), root / product)
    bad = {
        '0000000': first_stamp(root, 's1', '0000000') / 'VV.tif',
        '0000001': first_stamp(root, 's2c', '0000001') / 'B2.tif',
        '0000002': first_stamp(root, 's2c', '0000002') / 'B11.tif',
    }
    data = bad['0000000'].read_bytes()
    bad['0000000'].write_bytes(data[: len(data) // 3])
    bad['0000001'].write_text('<html>404 Not Found</html>\n')
    bad['0000002'].write_bytes(b'')
    return root, bad


def test_read_band_names_the_file(tmp_path: Path) -> None:
    root, bad = corrupt_copy(tmp_path)
    # The truncated file still opens (its header is intact); the read fails.
    with rasterio.open(bad['0000000']) as src:
        assert src.count == 1
    for path in bad.values():
        with pytest.raises(RasterReadError, match='cannot read') as info:
            read_band(str(path), (8, 8), where='test sample')
        assert repr(str(path)) in str(info.value)
        assert 'test sample' in str(info.value)
        assert isinstance(info.value, ValueError)
    good = first_stamp(root, 's1', '0000003') / 'VV.tif'
    assert read_band(str(good), (8, 8)).shape == (8, 8)
    assert read_band(str(good)).dtype == np.float32


def test_corrupt_file_errors_name_path_and_location(tmp_path: Path) -> None:
    root, bad = corrupt_copy(tmp_path)
    ds = SSL4EOS12Pairs(str(root), size=12, season_mode='fixed', season=0)
    assert ds.locations == SSL4EO_S12_LOCATIONS
    for index, location in enumerate(ds.locations[:3]):
        with pytest.raises(ValueError, match='cannot read') as info:
            ds[index]
        message = str(info.value)
        assert str(bad[location]) in message
        assert f"SSL4EO-S12 location '{location}'" in message
    assert ds[3]['image_s1'].shape == (4, 12, 12)


def test_check_files_finds_corrupt_files_up_front(tmp_path: Path) -> None:
    root, _ = corrupt_copy(tmp_path)
    with pytest.raises(ValueError, match="malformed SSL4EO-S12 location '0000000'"):
        SSL4EOS12Pairs(str(root), size=12, check_files=True)


def test_skip_leaves_only_locations_that_read(tmp_path: Path) -> None:
    root, bad = corrupt_copy(tmp_path)
    with pytest.warns(UserWarning, match='skipping it') as record:
        ds = SSL4EOS12Pairs(str(root), size=12, on_invalid='skip')
    assert ds.locations == SSL4EO_S12_LOCATIONS[3:]
    assert set(ds.skipped) == {'0000000', '0000001', '0000002'}
    messages = ' '.join(str(w.message) for w in record)
    for path in bad.values():
        assert str(path) in messages
    # Nothing accepted can fail later: every timestamp of what is left reads.
    for location in ds.locations:
        ds.read_all_timestamps(location)


def test_bands_on_different_grids_found_by_the_check(tmp_path: Path) -> None:
    # The fixture keeps the native 10/20/60 m grids; without resampling
    # (size=None) the bands cannot be stacked, which the check must find before
    # training instead of at the first batch.
    with pytest.raises(ValueError, match=r'differ in size.*pass size='):
        SSL4EOS12Pairs(ROOT, size=None, check_files=True)
    with pytest.warns(UserWarning, match='differ in size'):
        with pytest.raises(ValueError, match='no paired SSL4EO-S12 locations'):
            SSL4EOS12Pairs(ROOT, size=None, on_invalid='skip')


def test_size_must_be_positive() -> None:
    for size in (0, -3):
        with pytest.raises(ValueError, match='size must be a positive'):
            SSL4EOS12Pairs(ROOT, size=size)


def test_cache_writer_skips_the_same_locations(tmp_path: Path) -> None:
    root, bad = corrupt_copy(tmp_path)
    with pytest.raises(ValueError, match=str(bad['0000000'])):
        write_cache(str(root), str(tmp_path / 'err'), size=12, progress=False)
    with pytest.warns(UserWarning, match='skipping it'):
        manifest = write_cache(
            str(root),
            str(tmp_path / 'cache'),
            size=12,
            on_invalid='skip',
            progress=False,
        )
    assert list(manifest['locations']) == SSL4EO_S12_LOCATIONS[3:]
    assert set(manifest['skipped']) == {'0000000', '0000001', '0000002'}
    for location, path in bad.items():
        assert str(path) in manifest['skipped'][location]


def test_bigearthnet_corrupt_band_names_the_file(tmp_path: Path) -> None:
    from torchgeo_decur.datasets import BigEarthNetMM

    root = tmp_path / 'v1'
    shutil.copytree(os.path.join(DATA, 'bigearthnet', 'v1'), root)
    ds = BigEarthNetMM(str(root), 'train', image_size=12)
    folder = ds.folders[0]['s2']
    path = Path(folder) / f'{os.path.basename(folder)}_B03.tif'
    path.write_text('not a GeoTIFF\n')
    with pytest.raises(RasterReadError, match='cannot read') as info:
        ds[0]
    assert str(path) in str(info.value)
    assert 'BigEarthNet band B03' in str(info.value)


def test_sunrgbd_truncated_image_names_the_file(tmp_path: Path) -> None:
    from torchgeo_decur.datasets import SUNRGBD

    root = tmp_path / 'sunrgbd'
    shutil.copytree(os.path.join(DATA, 'sunrgbd'), root)
    path = root / 'RGB' / '000001.jpg'
    data = path.read_bytes()
    path.write_bytes(data[:40])
    ds = SUNRGBD(str(root), split='all')
    with pytest.raises(RasterReadError, match='cannot read') as info:
        ds[0]
    assert str(path) in str(info.value)
