"""Co-registered stores: written once from the own-raster fixture, read by windows.

One store of the three fixture rasters (S1-like in EPSG:4326, S2-like in UTM 32N,
a DEM in EPSG:3035) with 32 px tiles is shared by the module, so every 32 px patch
off the tile grid straddles two to four tiles.
"""

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from torchgeo.datasets import RasterDataset

from torchgeo_decur.datamodules import MultimodalGeoDataModule
from torchgeo_decur.datamodules.coregistered import StorePatches, coregister
from torchgeo_decur.datasets.coregistered import (
    CoRegisteredGrid,
    CoRegisteredRasters,
    _TileJob,
    tile_path,
)
from torchgeo_decur.datasets.resumable import MANIFEST, SETTINGS

FIXTURE = Path(__file__).parents[1] / 'data' / 'own_rasters'
MODALITIES = ('s1', 's2', 'dem')


def datasets(root: Path = FIXTURE) -> dict[str, RasterDataset]:
    return {m: RasterDataset(paths=str(root / m)) for m in MODALITIES}


def datamodule(**kwargs: Any) -> MultimodalGeoDataModule:
    root = kwargs.pop('root', FIXTURE)
    return MultimodalGeoDataModule(
        datasets(root),
        patch_size=32,
        length=8,
        batch_size=4,
        statistics_patches=8,
        **kwargs,
    )


def quiet_setup(dm: MultimodalGeoDataModule) -> MultimodalGeoDataModule:
    # torchgeo announces each CRS/resolution change on stdout.
    with contextlib.redirect_stdout(sys.stderr):
        dm.setup('fit')
    return dm


def write(root: Path, output: Path, **kwargs: Any) -> dict[str, Any]:
    with contextlib.redirect_stdout(sys.stderr):
        return coregister(
            datamodule(root=root),
            str(output),
            progress=False,
            **{'tile_size': 32, **kwargs},
        )


@pytest.fixture(scope='module')
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('coregistered') / 'store'
    write(FIXTURE, out)
    return out


@pytest.fixture
def own_copy(tmp_path: Path) -> Path:
    """A copy of the fixture rasters that a test may change."""
    root = tmp_path / 'rasters'
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns('*.py'))
    return root


def test_samples_are_bit_equal_to_the_on_the_fly_path(store: Path) -> None:
    fast = quiet_setup(datamodule(coregistered=str(store)))
    slow = quiet_setup(datamodule())
    assert isinstance(fast.train_dataset, StorePatches)
    grid = fast.train_dataset.store.grid
    locations = list(fast.train_sampler)
    assert len(locations) == 8
    straddling = 0
    for x, y in locations:
        sample = fast.train_dataset[x, y]
        # The location is snapped to the store's grid; read the same bounds on the fly.
        col, row = grid.pixel(x.start, y.stop)
        straddling += col % 32 != 0 or row % 32 != 0
        xs, ys = grid.slices(col, row, 32, 32)
        assert sample['bounds'][0] == pytest.approx(xs.start)
        assert sample['bounds'][4] == pytest.approx(ys.stop)
        expected = slow.train_dataset.to_storage(slow.train_dataset.read(xs, ys))
        for m in MODALITIES:
            got, want = sample[f'image_{m}'], expected[f'image_{m}']
            assert got.dtype == want.dtype
            assert torch.equal(got, want), m
    assert straddling > 0
    assert fast.train_dataset[locations[0]]['image_s2'].dtype == torch.uint16
    # Statistics come from the same sampling, read from the store.
    assert fast.channels == slow.channels == {'s1': 2, 's2': 13, 'dem': 1}


def test_first_modality_is_copied_from_its_file(store: Path) -> None:
    reader = CoRegisteredRasters(str(store))
    with rasterio.open(FIXTURE / 's1' / 's1_grd.tif') as src:
        col, row = (
            round(v) for v in ~src.transform @ (reader.grid.west, reader.grid.north)
        )
        expected = src.read(window=((row + 5, row + 45), (col + 7, col + 47)))
    assert np.array_equal(reader.read('s1', 7, 5, 40), expected)


def test_tiles_are_cloud_optimized_geotiffs(store: Path) -> None:
    reader = CoRegisteredRasters(str(store))
    assert len(reader.tiles) > 4
    row, col = sorted(reader.tiles)[0]
    with rasterio.open(tile_path(str(store), 's2', row, col)) as src:
        assert src.tags(ns='IMAGE_STRUCTURE')['LAYOUT'] == 'COG'
        assert src.compression is not None
        assert src.compression.value == 'ZSTD'
        assert src.block_shapes[0] == (256, 256)
        assert src.dtypes[0] == 'uint16'
        assert src.count == 13
        assert src.crs == rasterio.crs.CRS.from_epsg(4326)
    assert oct(os.stat(store / MANIFEST).st_mode & 0o777) == oct(
        0o666 & ~current_umask()
    )


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_float32_option_reads_float(store: Path) -> None:
    dm = quiet_setup(datamodule(coregistered=str(store), native_dtypes=False))
    sample = dm.train_dataset[next(iter(dm.train_sampler))]
    assert {v.dtype for k, v in sample.items() if k.startswith('image')} == {
        torch.float32
    }


def test_changed_source_is_refused_naming_the_file(
    own_copy: Path, tmp_path: Path
) -> None:
    out = tmp_path / 'store'
    write(own_copy, out)
    changed = own_copy / 's2' / 's2_l1c.tif'
    with rasterio.open(changed, 'r+') as dst:
        data = dst.read(1)
        data[0, 0] += 1
        dst.write(data, 1)
    with pytest.raises(ValueError, match='changed after co-registration') as info:
        quiet_setup(datamodule(root=own_copy, coregistered=str(out)))
    assert str(changed.resolve()) in str(info.value)
    with pytest.raises(ValueError, match=str(changed.resolve())):
        write(own_copy, out)
    manifest = write(own_copy, out, overwrite=True)
    assert len(manifest['tiles']) > 0


def test_other_settings_are_refused(store: Path, tmp_path: Path) -> None:
    out = tmp_path / 'store'
    shutil.copytree(store, out)
    with pytest.raises(ValueError, match='tile_size') as info:
        write(FIXTURE, out, tile_size=64)
    assert str(out) in str(info.value)
    assert '--overwrite' in str(info.value)


def test_interrupted_write_resumes(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / 'store'
    original = _TileJob._write
    calls = []

    def failing(self: _TileJob, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        original(self, *args)

    monkeypatch.setattr(_TileJob, '_write', failing)
    with pytest.raises(KeyboardInterrupt):
        write(FIXTURE, out)
    monkeypatch.setattr(_TileJob, '_write', original)
    assert (out / SETTINGS).is_file()
    assert not (out / MANIFEST).exists()
    with pytest.raises(ValueError, match='unfinished'):
        quiet_setup(datamodule(coregistered=str(out)))
    done = {p: p.stat().st_mtime_ns for p in out.glob('*/r*_c*.tif')}
    assert len(done) == 6
    (out / 's1' / '.r0000_c0000.tif.tmp-dead').write_bytes(b'partial')  # a kill's
    write(FIXTURE, out)
    assert {p: p.stat().st_mtime_ns for p in done} == done  # kept, not rewritten
    assert not list(out.glob('*/.*tmp*'))
    assert not (out / SETTINGS).exists()
    full, resumed = CoRegisteredRasters(str(store)), CoRegisteredRasters(str(out))
    assert resumed.tiles == full.tiles
    for m in MODALITIES:
        size = max(full.grid.width, full.grid.height)
        assert np.array_equal(
            full.read(m, 0, 0, size), resumed.read(m, 0, 0, size), equal_nan=True
        )


def far_away(root: Path) -> Path:
    """A copy of the S2 raster moved 50 km east, overlapping nothing."""
    folder = root / 'far'
    folder.mkdir()
    with rasterio.open(FIXTURE / 's2' / 's2_l1c.tif') as src:
        profile = src.profile
        data = src.read()
        t = src.transform
    profile['transform'] = rasterio.Affine(t.a, t.b, t.c + 50000, t.d, t.e, t.f)
    with rasterio.open(folder / 'far.tif', 'w', **profile) as dst:
        dst.write(data)
    return folder


def test_no_overlap_is_one_error_naming_the_datasets(tmp_path: Path) -> None:
    far = far_away(tmp_path)
    dm = MultimodalGeoDataModule(
        {
            's1': RasterDataset(paths=str(FIXTURE / 's1')),
            'far': RasterDataset(paths=str(far)),
        }
    )
    with pytest.raises(ValueError, match='does not overlap') as info:
        with contextlib.redirect_stdout(sys.stderr):
            coregister(dm, str(tmp_path / 'store'), progress=False)
    message = str(info.value)
    assert "'far'" in message
    assert str(far) in message
    assert "'s1'" in message
    assert not (tmp_path / 'store').exists()


def test_shards_command_streams_a_store(store: Path, tmp_path: Path) -> None:
    from torchgeo_decur.cli import main as cli_main
    from torchgeo_decur.datasets.terramesh import TerraMeshStream

    init = json.dumps({'root': str(store), 'patch_size': 24})
    args = ['shards', 'torchgeo_decur.datasets.coregistered:CoRegisteredGrid']
    args += ['--init-args', init, '--out', str(tmp_path), '--samples-per-shard', '4']
    assert cli_main(args) == 0
    grid = CoRegisteredGrid(str(store), patch_size=24)
    assert len(grid) > 4
    streamed = list(
        TerraMeshStream(str(tmp_path), 'train', list(MODALITIES), shuffle=False)
    )
    assert len(streamed) == len(grid)
    reader = CoRegisteredRasters(str(store))
    for sample, (col, row) in zip(streamed, grid.locations, strict=True):
        for m in MODALITIES:
            want = reader.read(m, col, row, 24)
            assert sample[f'image_{m}'].numpy().dtype == want.dtype
            assert np.array_equal(sample[f'image_{m}'].numpy(), want)
