"""MultimodalGeoDataModule on the rasters of tests/data/own_rasters (three CRSs)."""

import importlib.util
import os
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
import shapely
import torch
from torch import Tensor
from torchgeo.datasets import RasterDataset
from torchgeo.samplers import RandomPatchSampler

from torchgeo_decur import DeCURTask
from torchgeo_decur.datamodules import MultimodalGeoDataModule
from torchgeo_decur.transforms import estimate_band_statistics

from ..conftest import DATA, quiet_trainer

HERE = os.path.join(DATA, 'own_rasters')


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location('own_rasters_data', f'{HERE}/data.py')
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def datasets(*names: str) -> dict[str, RasterDataset]:
    return {m: RasterDataset(paths=os.path.join(HERE, m)) for m in names}


def module(names: tuple[str, ...] = ('s1', 's2', 'dem'), **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        'patch_size': 16,
        'length': 8,
        'batch_size': 4,
        'statistics_patches': 8,
    }
    return MultimodalGeoDataModule(datasets(*names), **(options | kwargs))


def pattern_at(bounds: Tensor, size: int, crs: str) -> np.ndarray:
    """The ground pattern at the pixel centres of a patch (size x size, north up)."""
    x0, x1, _, y0, y1 = (float(v) for v in bounds[:5])
    transform = gen.from_origin(x0, y1, (x1 - x0) / size, (y1 - y0) / size)
    return gen.ground(crs, transform, size, size)  # type: ignore[no-any-return]


#: Inverse of each modality's band 0 (tests/data/own_rasters/data.py).
TO_PATTERN = {
    's1': lambda x: (x + 12.0) / 4.0,
    's2': lambda x: (x - 1200.0) / 300.0,
    'dem': lambda x: (x - 310.0) / 40.0,
}


def test_patches_are_coregistered_pixel_for_pixel_across_three_crss() -> None:
    dm = module(length=16)
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {'image_s1', 'image_s2', 'image_dem', 'bounds'}
    assert batch['image_s1'].shape == (4, 2, 16, 16)
    assert batch['image_s2'].shape == (4, 13, 16, 16)
    assert batch['image_dem'].shape == (4, 1, 16, 16)
    res = batch['bounds'][0, 2].item(), batch['bounds'][0, 5].item()
    for i in range(4):
        bounds = batch['bounds'][i]
        truth = pattern_at(bounds, 16, 'EPSG:4326')
        for m, inverse in TO_PATTERN.items():
            seen = inverse(batch[f'image_{m}'][i, 0].numpy())
            # Every raster, reprojected to the S1 grid, shows the pattern at the
            # pixel's own ground position (up to bilinear resampling) ...
            error = np.abs(seen - truth).mean()
            assert error < 0.1, (m, i)
            # ... and fits it better than the ground one pixel away in any direction.
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                moved = bounds.clone()
                moved[[0, 1]] += dx * res[0]
                moved[[3, 4]] += dy * res[1]
                other = pattern_at(moved, 16, 'EPSG:4326')
                assert np.abs(seen - other).mean() > 1.2 * error, (m, i, dx, dy)
        # And the modalities correlate with each other in every patch.
        flat = torch.stack(
            [batch[f'image_{m}'][i, 0].flatten() for m in ('s1', 's2', 'dem')]
        )
        assert torch.corrcoef(flat).min() > 0.95


def test_a_misregistered_modality_would_be_caught() -> None:
    # Negative control for the test above: the same check fails for S2 read 3 px
    # east of the S1 patch.
    dm = module()
    dm.setup('fit')
    ds = dm.train_dataset
    x, y = next(iter(dm.train_sampler))
    step = 3 * ds.res[0]
    good = ds.read(x, y)
    moved = ds.read(slice(x.start + step, x.stop + step), y)
    truth = pattern_at(good['bounds'], 16, 'EPSG:4326')
    err_good = np.abs(TO_PATTERN['s2'](good['image_s2'][0].numpy()) - truth).mean()
    err_moved = np.abs(TO_PATTERN['s2'](moved['image_s2'][0].numpy()) - truth).mean()
    assert err_good < 0.05 < err_moved


def test_target_crs_and_resolution() -> None:
    dm = module(crs='EPSG:32632', res=60.0, patch_size=8)
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    b = batch['bounds'][0]
    assert float(b[1] - b[0]) == pytest.approx(8 * 60.0)
    truth = pattern_at(b, 8, 'EPSG:32632')
    seen = TO_PATTERN['dem'](batch['image_dem'][0, 0].numpy())
    assert np.abs(seen - truth).mean() < 0.15


def test_statistics_are_estimated_seeded_saved_and_applied_on_device() -> None:
    dm = module(('s1', 's2'))
    dm.setup('fit')
    stats = dm.hparams['statistics']
    assert set(stats) == {'s1', 's2'}
    assert len(stats['s2']['mean']) == 13
    assert len(stats['s1']['std']) == 2
    # Same seed, same patches, same statistics; they match a direct estimate.
    again = module(('s1', 's2'))
    again.setup('fit')
    assert again.hparams['statistics'] == stats
    # They are those of the seeded sample of training patches.
    locations = RandomPatchSampler(
        dm.build_intersection(), size=16, length=8, generator=0
    )
    patches = [dm.train_dataset[loc] for loc in locations]
    for m, nodata in (('s1', -9999.0), ('s2', 0.0)):
        mean, std = estimate_band_statistics([p[f'image_{m}'] for p in patches], nodata)
        assert stats[m]['mean'] == pytest.approx(mean.tolist(), rel=1e-9)
        assert stats[m]['std'] == pytest.approx(std.tolist(), rel=1e-9)
    # S2 band means follow the fixture's offsets (1200 + 90 b + ...).
    assert np.diff(stats['s2']['mean']) == pytest.approx([90.0] * 12, abs=10)
    # On the device, every band is scaled to [0, 1] around 0.5.
    dm.trainer = SimpleNamespace(training=True, lightning_module=None)
    batch = next(iter(dm.train_dataloader()))
    out = dm.on_after_batch_transfer(batch, 0)
    for m in ('s1', 's2'):
        assert out[f'image_{m}'].min() >= 0
        assert out[f'image_{m}'].max() <= 1
        assert 0.3 < out[f'image_{m}'].mean() < 0.7
    # The checkpointed state carries the statistics.
    assert dm.state_dict() == {'statistics': stats}


def test_given_statistics_are_used_as_is() -> None:
    given = {'dem': {'mean': [300.0], 'std': [10.0]}}
    dm = module(statistics=given)
    dm.setup('fit')
    assert dm.hparams['statistics']['dem'] == given['dem']
    with pytest.raises(ValueError, match=r"modality 'dem' have 2 means"):
        module(statistics={'dem': {'mean': [1.0, 2.0], 'std': [1.0, 1.0]}}).setup('fit')
    with pytest.raises(ValueError, match=r"statistics names modalities \['b'\]"):
        module(statistics={'b': {'mean': [1.0], 'std': [1.0]}})


def test_validation_strip_never_shares_ground_with_training() -> None:
    dm = module(length=64, val_fraction=0.35)
    dm.setup('fit')
    val = [shapely.box(x.start, y.start, x.stop, y.stop) for x, y in dm.val_sampler]
    assert val
    train = [shapely.box(x.start, y.start, x.stop, y.stop) for x, y in dm.train_sampler]
    assert len(train) == 64
    union = shapely.union_all(val)
    assert not any(t.intersection(union).area > 0 for t in train)
    batch = next(iter(dm.val_dataloader()))
    assert batch['image_s2'].shape[1:] == (13, 16, 16)


def test_datasets_that_do_not_overlap(tmp_path: Path) -> None:
    far = tmp_path / 'far'
    gen.write_raster(
        str(far / 'far.tif'),
        'EPSG:32632',
        600000.0,
        5300000.0,
        (30.0, 30.0),
        (20, 20),
        gen.dem_bands,
        'float32',
    )
    ds = datasets('s1', 's2') | {'far': RasterDataset(paths=str(far))}
    dm = MultimodalGeoDataModule(ds, patch_size=8)
    with pytest.raises(
        ValueError, match=r"modality 'far' \(RasterDataset\(paths=.*far"
    ):
        dm.setup('fit')


def test_patch_larger_than_the_intersection() -> None:
    dm = module(patch_size=80)
    with pytest.raises(ValueError, match=r'patch_size=80 px .* does not fit the'):
        dm.setup('fit')


def test_all_nodata_region_is_named(tmp_path: Path) -> None:
    empty = tmp_path / 'empty'
    gen.write_raster(
        str(empty / 'empty.tif'),
        'EPSG:32632',
        507000.0,
        5398500.0,
        (30.0, 30.0),
        (110, 110),
        lambda f: np.full((1, *f.shape), -1.0),
        'float32',
        nodata=-1.0,
    )
    ds = datasets('s1') | {'empty': RasterDataset(paths=str(empty))}
    dm = MultimodalGeoDataModule(ds, patch_size=8, statistics_patches=2)
    with pytest.raises(
        ValueError, match=r"modality 'empty' \(RasterDataset.*nodata=-1"
    ):
        dm.setup('fit')


def test_mostly_invalid_patches_are_redrawn(tmp_path: Path) -> None:
    # S2 with its western half set to nodata: every accepted patch is valid.
    half = tmp_path / 'half'

    def west_nodata(f: np.ndarray) -> np.ndarray:
        bands = gen.s2_bands(f)
        bands[:, :, :55] = 0
        return bands

    gen.write_raster(
        str(half / 'half.tif'),
        'EPSG:32632',
        507000.0,
        5398500.0,
        (30.0, 30.0),
        (110, 110),
        west_nodata,
        'uint16',
        nodata=0,
    )
    ds = datasets('s1') | {'s2': RasterDataset(paths=str(half))}
    dm = MultimodalGeoDataModule(
        ds,
        patch_size=8,
        length=16,
        batch_size=16,
        min_valid_fraction=1.0,
        statistics_patches=8,
    )
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    assert (batch['image_s2'].float() > 0).all()  # uint16 DN: compare as float
    assert len(batch['image_s2']) == 16


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match='at least one modality'):
        MultimodalGeoDataModule({})
    with pytest.raises(ValueError, match=r"datasets\['s1'\] must be a torchgeo"):
        MultimodalGeoDataModule({'s1': 'data/s1'})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match='val_fraction'):
        module(val_fraction=1.0)
    with pytest.raises(ValueError, match='min_valid_fraction'):
        module(min_valid_fraction=1.5)


def tiny_task(modalities: list[str], **kwargs: Any) -> DeCURTask:
    return DeCURTask(
        modalities=modalities,
        model='resnet18',
        projector_dims=[16, 16],
        common_dim=8,
        crop_size=16,
        **kwargs,
    )


def test_dataset_names_must_be_the_task_modalities() -> None:
    dm = module(('s1', 's2'))
    task = tiny_task(['s1', 'dem'], in_channels={'dem': 1})
    with pytest.raises(ValueError, match=r"task has modalities \['s1', 'dem'\].*'s2'"):
        quiet_trainer(fast_dev_run=1).fit(task, datamodule=dm)


def test_band_count_must_be_the_task_in_channels() -> None:
    dm = module(('s1', 's2'))
    task = tiny_task(['s1', 's2'], in_channels={'s2': 12})
    with pytest.raises(
        ValueError, match=r"modality 's2': RasterDataset\(paths=.*s2'\) has 13 bands"
    ):
        quiet_trainer(fast_dev_run=1).fit(task, datamodule=dm)


def test_band_count_checked_against_default_in_channels() -> None:
    # No in_channels given: s2 defaults to 13 channels, but the raster has 1.
    ds = datasets('s1') | {'s2': RasterDataset(paths=os.path.join(HERE, 'dem'))}
    dm = MultimodalGeoDataModule(ds, patch_size=16, statistics_patches=2)
    task = tiny_task(['s1', 's2'])
    with pytest.raises(ValueError, match=r"modality 's2': .*dem'\) has 1 bands but"):
        quiet_trainer(fast_dev_run=1).fit(task, datamodule=dm)


def test_pretrains_decur_on_three_modalities() -> None:
    dm = module(batch_size=4)
    task = tiny_task(['s1', 's2', 'dem'], in_channels={'dem': 1})
    trainer = quiet_trainer(max_steps=2)
    trainer.fit(task, datamodule=dm)
    assert trainer.global_step == 2
    logged = trainer.logged_metrics
    for name in ('train_intra_dem', 'train_common_s1_dem', 'train_unique_s2_dem'):
        assert torch.isfinite(logged[name]), name


@pytest.mark.parametrize('normalization', ['decur', 'none'])
def test_integer_rasters_travel_in_their_type_and_scale_identically(
    normalization: str,
) -> None:
    batches = []
    for native in (True, False):
        dm = module(normalization=normalization, native_dtypes=native)
        dm.setup('fit')
        dm.trainer = SimpleNamespace(training=True, lightning_module=None)
        batch = next(iter(dm.train_dataloader()))
        # The fixture's S2 is uint16, S1 and the DEM float32.
        s2 = torch.uint16 if native else torch.float32
        assert batch['image_s2'].dtype == s2
        assert batch['image_s1'].dtype == batch['image_dem'].dtype == torch.float32
        batches.append(dm.on_after_batch_transfer(batch, 0))
    new, old = batches
    for m in ('s1', 's2', 'dem'):
        assert new[f'image_{m}'].dtype == torch.float32, m
        assert torch.equal(new[f'image_{m}'], old[f'image_{m}']), m


def test_a_patch_its_storage_type_cannot_hold_is_refused() -> None:
    dm = module(('s1', 's2'))
    dm.setup('fit')
    ds = dm.train_dataset
    sample = ds.read(*next(iter(dm.train_sampler)))
    sample['image_s2'][0, 0, 0] = 0.5  # not a uint16 value
    with pytest.raises(
        ValueError, match=r"'s2'.*not exact torch.uint16.*native_dtypes"
    ):
        ds.to_storage(sample)


BASELINES = os.path.join(DATA, 's2_baselines')


def baseline_module(
    folder: str, mode: str = 'auto', coregistered: str | None = None
) -> MultimodalGeoDataModule:
    return MultimodalGeoDataModule(
        {'s2': RasterDataset(paths=os.path.join(BASELINES, folder))},
        patch_size=16,
        length=2,
        batch_size=1,
        statistics_patches=1,
        min_valid_fraction=0.0,
        s2_harmonize=mode,
        coregistered=coregistered,
    )


def baseline_patches(
    folder: str, mode: str = 'auto', coregistered: str | None = None
) -> Tensor:
    """Every 16 px patch of one folder's S2 ground, through the data module."""
    dm = baseline_module(folder, mode, coregistered)
    dm.setup('fit')
    assert dm.hparams['s2_harmonize'] == mode
    ds = dm.train_dataset
    x0, y0 = 500_000.0, 5_400_000.0 - 320.0
    return torch.stack(
        [
            ds[slice(x, x + 160.0), slice(y, y + 160.0)]['image_s2']
            for x in (x0, x0 + 80.0, x0 + 160.0)
            for y in (y0, y0 + 160.0)
        ]
    )


def test_offset_rasters_read_like_pre_offset_ones() -> None:
    old = baseline_patches('pb0301')
    assert old.dtype == torch.uint16
    # By the baseline in the name, the date in the name, the offset tag, and file
    # by file in a mosaic of a 2021 and a 2023 product.
    for folder in ('pb0509', 'dated', 'tagged', 'mosaic'):
        assert torch.equal(baseline_patches(folder), old), folder
    assert (old == 0).any()
    raw = baseline_patches('pb0509', 'never').int()
    valid = old != 0
    assert torch.equal((raw - old.int())[valid], torch.full_like(raw[valid], 1000))
    assert (raw[~valid] == 0).all()
    assert torch.equal(baseline_patches('pb0301', 'never'), old)


def test_an_undated_raster_warns_once() -> None:
    with pytest.warns(UserWarning, match='cannot tell') as record:
        undated = baseline_patches('undated')
    assert len([w for w in record if 'cannot tell' in str(w.message)]) == 1
    assert torch.equal(undated, baseline_patches('pb0301'))
    with pytest.raises(ValueError, match='s2_harmonize must be one of'):
        module(s2_harmonize='sometimes')


def test_coregistered_store_is_harmonized_like_the_on_the_fly_path(
    tmp_path: Path,
) -> None:
    # The store holds what the on-the-fly path reads: the offset removed file by
    # file (here a mosaic of a 2021 and a 2023 product), and a store written
    # under one s2_harmonize decision is refused under another.
    from torchgeo_decur.datamodules.coregistered import coregister

    store = str(tmp_path / 'store')
    coregister(baseline_module('mosaic'), store, tile_size=16, progress=False)
    assert torch.equal(
        baseline_patches('mosaic', coregistered=store), baseline_patches('pb0301')
    )
    with pytest.raises(ValueError, match='another Sentinel-2 harmonization'):
        baseline_module('mosaic', 'never', coregistered=store).setup('fit')
