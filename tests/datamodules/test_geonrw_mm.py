import os

import pytest
import torch

from torchgeo_decur.datamodules import GeoNRWMMDataModule
from torchgeo_decur.transforms import geonrw_normalization

from ..conftest import DATA
from ..tasks.test_arguments import argument_count

ROOT = os.path.join(DATA, 'geonrw')


def test_normalisation_bgr_and_dem_scalings() -> None:
    rgb = torch.stack([torch.full((4, 4), v) for v in (0.1, 0.2, 0.3)])[None]
    dem = torch.arange(100.0).reshape(1, 1, 10, 10) + 50
    batch = {'image_rgb': rgb, 'image_dem': dem}
    out = geonrw_normalization()(batch)
    assert out['image_rgb'][0, :, 0, 0].tolist() == pytest.approx([0.3, 0.2, 0.1])
    # Downstream: per-image min-max to [0, 1], replicated to 3 channels.
    d = out['image_dem']
    assert d.shape == (1, 3, 10, 10)
    assert torch.allclose(d[0, 0], (dem[0, 0] - 50) / 99, atol=1e-6)
    assert torch.equal(d[:, 0], d[:, 2])
    # Pretraining: 1-99 % clip, rescaled by (p99 - p1 + 1e-5).
    p = geonrw_normalization(dem_scaling='percentile', dem_channels=1)(batch)
    lo, hi = torch.quantile(dem.flatten(), torch.tensor([0.01, 0.99]))
    expected = (dem.clamp(lo, hi) - lo) / (hi - lo + 1e-5)
    assert p['image_dem'].shape == (1, 1, 10, 10)
    assert torch.allclose(p['image_dem'], expected, atol=1e-6)
    # A flat tile stays finite.
    flat = geonrw_normalization(['dem'])({'image_dem': torch.full((1, 1, 4, 4), 80.0)})
    assert torch.isfinite(flat['image_dem']).all()
    raw = geonrw_normalization(channel_order='rgb', dem_scaling='none', dem_channels=1)
    assert torch.equal(raw(batch)['image_rgb'], rgb)
    assert torch.equal(raw(batch)['image_dem'], dem)
    with pytest.raises(ValueError, match='dem_scaling'):
        geonrw_normalization(dem_scaling='zscore')  # type: ignore[arg-type]


def test_training_augmentation_moves_rgb_dem_and_mask_together() -> None:
    dm = GeoNRWMMDataModule(
        root=ROOT,
        channel_order='rgb',
        normalization='none',
        dem_channels=1,
        crop_size=24,
        augment_kwargs={'vflip': True},
    )
    g = torch.Generator().manual_seed(0)
    # Blocky class map; RGB channel 0 and the DEM both carry it as values.
    mask = torch.randint(0, 11, (8, 4, 4), generator=g).repeat_interleave(8, 1)
    mask = mask.repeat_interleave(8, 2)
    rgb = torch.cat([mask[:, None].float(), torch.rand(8, 2, 32, 32, generator=g)], 1)
    batch = {'image_rgb': rgb, 'image_dem': mask[:, None].float(), 'mask': mask}
    out = dm.train_aug(batch)
    assert out['image_rgb'].shape == (8, 3, 24, 24)
    assert out['image_dem'].shape == (8, 1, 24, 24)
    assert out['mask'].shape == (8, 24, 24)
    assert out['mask'].dtype == torch.long
    # The DEM got exactly the RGB's crop and flips (torchgeo's GeoNRW key "dem" would
    # not have been augmented at all) ...
    assert torch.allclose(out['image_dem'][:, 0], out['image_rgb'][:, 0], atol=1e-5)
    # ... and the mask the same geometry, resampled nearest (class values only).
    assert set(out['mask'].unique().tolist()) <= set(range(11))
    carried = out['image_rgb'][:, 0]
    inside = (carried - carried.round()).abs() < 1e-4  # away from class boundaries
    assert inside.float().mean() > 0.5
    agree = out['mask'][inside] == carried[inside].round().long()
    assert agree.float().mean() > 0.99
    assert not torch.equal(dm.train_aug(batch)['mask'], out['mask'])


def test_reference_nearest_resampling_keeps_image_values() -> None:
    rgb = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    batch = {'image_rgb': rgb, 'mask': torch.zeros(4, 32, 32, dtype=torch.long)}
    values = set(rgb.flatten().tolist())

    def crop(resample: str) -> torch.Tensor:
        dm = GeoNRWMMDataModule(
            root=ROOT,
            modalities=['rgb'],
            channel_order='rgb',
            crop_size=24,
            augment_kwargs={'image_resample': resample},
        )
        return dm.train_aug(dict(batch))['image_rgb']

    assert set(crop('nearest').flatten().tolist()) <= values
    assert not set(crop('bilinear').flatten().tolist()) <= values
    with pytest.raises(ValueError, match='image_resample'):
        crop('bicubic')


def test_evaluation_tiles_are_not_augmented() -> None:
    dm = GeoNRWMMDataModule(root=ROOT, tile_size=32, batch_size=4)
    dm.setup('test')
    batch = next(iter(dm.test_dataloader()))
    out = dm.aug(batch)
    expected = geonrw_normalization()(batch)
    assert torch.equal(out['image_rgb'], expected['image_rgb'])
    assert torch.equal(out['image_dem'], expected['image_dem'])
    assert torch.equal(out['mask'], batch['mask'])
    resized = GeoNRWMMDataModule(root=ROOT, tile_size=32, eval_size=64).aug(batch)
    assert resized['image_rgb'].shape[-2:] == (64, 64)
    assert resized['mask'].shape[-2:] == (64, 64)


def test_city_grouped_validation_and_label_fraction() -> None:
    dm = GeoNRWMMDataModule(
        root=ROOT, tile_size=32, train_fraction=0.5, fraction_seed=1, val_fraction=0.3
    )
    dm.setup('fit')
    train, val = dm.train_dataset, dm.val_dataset
    full = train.dataset
    train_cities = {full.city(i) for i in train.indices}
    val_cities = {full.city(i) for i in val.indices}
    assert len(val_cities) == 1
    assert not train_cities & val_cities
    assert len(val) == 8  # one city: 2 images x 4 tiles
    assert len(train.indices) == 8 == len(set(train.indices))  # half of 16
    # val_fraction 0: validate on the test split, as the reference did.
    dm0 = GeoNRWMMDataModule(root=ROOT, tile_size=32, val_fraction=0.0)
    dm0.setup('fit')
    assert len(dm0.train_dataset) == 24
    assert all('duesseldorf' in dm0.val_dataset.city(i) for i in range(8))


def test_pretraining_batches_fit_the_decur_task() -> None:
    dm = GeoNRWMMDataModule(
        root=ROOT,
        tile_size=32,
        augment=False,
        normalization='decur_pretraining',
        batch_size=3,
    )
    dm.setup('fit')
    batch = dm.train_aug(next(iter(dm.train_dataloader())))
    assert batch['image_rgb'].shape == (3, 3, 32, 32)  # one view per modality
    assert batch['image_dem'].shape == (3, 3, 32, 32)
    assert 0 <= batch['image_dem'].min()
    assert batch['image_dem'].max() <= 1
    with pytest.raises(ValueError, match='val_fraction'):
        GeoNRWMMDataModule(root=ROOT, val_fraction=1.0)
    with pytest.raises(ValueError, match='exactly one modality'):
        GeoNRWMMDataModule(root=ROOT, plain_image_key=True)


def test_argument_count_matches_bigearthnet() -> None:
    # 17 own arguments + torchgeo's dataset_class, as BigEarthNetMMDataModule.
    assert argument_count(GeoNRWMMDataModule) <= 18


def test_augment_kwargs_and_unknown_arguments_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"augment_kwargs has unknown keys \['rotate'\]"
    ):
        GeoNRWMMDataModule(root=ROOT, augment_kwargs={'rotate': True})
    with pytest.raises(TypeError, match="unexpected keyword argument 'rotate'"):
        GeoNRWMMDataModule(root=ROOT, rotate=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="'decur_uint8' does not apply"):
        GeoNRWMMDataModule(root=ROOT, normalization='decur_uint8')
