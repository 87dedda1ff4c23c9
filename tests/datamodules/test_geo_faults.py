"""MultimodalGeoDataModule on damaged or inconsistent rasters (issue 24 B01-B07)."""

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torchgeo.datasets import RasterDataset

from torchgeo_decur.datamodules import MultimodalGeoDataModule
from torchgeo_decur.datasets.rasters import RasterReadError

from .test_geo import HERE, datasets, gen, module


def s2_tiles(
    folder: Path, dtypes: tuple[str, str] = ('uint16', 'uint16')
) -> tuple[Path, Path]:
    """The S2 fixture's ground as two tiles (west, east) of the given types."""
    west, east = folder / 'west.tif', folder / 'east.tif'
    for path, x0, dtype in ((west, 507000.0, dtypes[0]), (east, 508650.0, dtypes[1])):
        gen.write_raster(
            str(path),
            'EPSG:32632',
            x0,
            5398500.0,
            (30.0, 30.0),
            (55, 110),
            gen.s2_bands,
            dtype,
            nodata=0,
        )
    return west, east


def with_s2(folder: Path, **kwargs: Any) -> MultimodalGeoDataModule:
    options: dict[str, Any] = {
        'patch_size': 8,
        'length': 8,
        'batch_size': 4,
        'statistics_patches': 16,
    }
    ds = datasets('s1') | {'s2': RasterDataset(paths=str(folder))}
    return MultimodalGeoDataModule(ds, **(options | kwargs))


def test_truncated_file_is_named_with_its_modality(tmp_path: Path) -> None:
    # B01
    _, east = s2_tiles(tmp_path / 's2')
    data = east.read_bytes()
    east.write_bytes(data[: len(data) // 2])
    dm = with_s2(tmp_path / 's2')
    with pytest.raises(RasterReadError) as info:
        dm.setup('fit')
    message = str(info.value)
    assert repr(str(east)) in message
    assert "modality 's2'" in message
    # Under the skip policy the patches on the damaged tile are redrawn and the
    # file reported once.
    dm = with_s2(tmp_path / 's2', on_invalid='skip')
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        dm.setup('fit')
        batches = list(dm.train_dataloader())
    assert any('skipping the patch' in str(w.message) for w in record)
    named = [w for w in record if str(east) in str(w.message)]
    assert len(named) == 1
    assert len(batches) == 2
    for batch in batches:
        # Every patch lies on the west tile (x below its east edge).
        assert (batch['bounds'][:, 1] <= 508650.0 + 1e-6).all()


def test_html_page_saved_as_tif_is_reported(tmp_path: Path) -> None:
    # B02
    folder = tmp_path / 's2'
    shutil.copytree(os.path.join(HERE, 's2'), folder)
    page = folder / 'tile_404.tif'
    page.write_text('<html><body>404 Not Found</body></html>\n')
    empty = folder / 'tile_empty.tif'
    empty.write_bytes(b'')
    with pytest.raises(RasterReadError, match='cannot be opened') as info:
        with_s2(folder).setup('fit')
    assert str(page) in str(info.value)
    assert str(empty) in str(info.value)
    assert "modality 's2'" in str(info.value)
    with pytest.warns(UserWarning, match='2 file') as record:
        with_s2(folder, on_invalid='skip').setup('fit')
    text = ' '.join(str(w.message) for w in record)
    assert str(page) in text
    assert str(empty) in text


def test_target_crs_without_res_converts_the_resolution() -> None:
    # B03: S1 (first) is EPSG:4326 at 0.0005 x 0.0003 degrees (~37 x 33 m).
    dm = module(('s1', 's2'), crs='EPSG:32632', patch_size=8)
    dm.setup('fit')
    xres, yres = dm.train_dataset.res
    assert 25 < xres < 50
    assert 25 < yres < 50
    batch = next(iter(dm.train_dataloader()))
    width = float(batch['bounds'][0, 1] - batch['bounds'][0, 0])
    assert width == pytest.approx(8 * xres, rel=1e-3)


def test_huge_length_is_refused_up_front() -> None:
    # B04
    with pytest.raises(ValueError, match=r'length=1e\+12'):
        module(length=10**12)


def test_mixed_dtypes_in_one_modality_are_refused(tmp_path: Path) -> None:
    # B05
    west, east = s2_tiles(tmp_path / 's2', ('uint16', 'float32'))
    with pytest.raises(ValueError, match='different data types') as info:
        with_s2(tmp_path / 's2').setup('fit')
    message = str(info.value)
    assert f'{str(west)!r} is uint16' in message
    assert f'{str(east)!r} is float32' in message


def test_constant_band_warns_at_setup(tmp_path: Path) -> None:
    # B06: band 3 of the DEM-like raster varies by ~5e-6 only.
    def bands(f: np.ndarray) -> np.ndarray:
        out = np.stack([310.0 + 40.0 * f] * 4)
        out[3] = 1.0 + 5e-6 * f
        return out

    gen.write_raster(
        str(tmp_path / 'flat' / 'flat.tif'),
        'EPSG:32632',
        507000.0,
        5398500.0,
        (30.0, 30.0),
        (110, 110),
        bands,
        'float32',
    )
    ds = datasets('s1') | {'flat': RasterDataset(paths=str(tmp_path / 'flat'))}
    dm = MultimodalGeoDataModule(ds, patch_size=8, statistics_patches=8)
    with pytest.warns(UserWarning, match=r"modality 'flat'.*band 3 is \(nearly\)"):
        dm.setup('fit')
    with warnings.catch_warnings():
        # No constant-band warning for the varying fixture bands (other
        # warnings, such as an undated Sentinel-2 source, are not this test's).
        warnings.filterwarnings('error', r'.*\(nearly\) constant', UserWarning)
        module(('s1', 's2'), patch_size=8).setup('fit')


def test_validation_strip_of_one_patch_is_refused() -> None:
    # B07
    dm = module(('s1', 's2'), patch_size=32, val_fraction=0.45)
    with pytest.raises(ValueError, match=r'val_fraction=0.45.*holds 1 patch'):
        dm.setup('fit')
