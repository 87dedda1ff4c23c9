import os
from pathlib import Path

import kornia.augmentation as K
import pytest
import torch

from torchgeo_decur import MultimodalClassificationTask
from torchgeo_decur.datamodules import BigEarthNetMMDataModule, sample_fraction
from torchgeo_decur.datasets import pairs_from_s1_metadata
from torchgeo_decur.transforms import (
    BIGEARTHNET_S1_MEAN,
    BIGEARTHNET_S1_STD,
    BIGEARTHNET_S2_MEAN,
    BIGEARTHNET_S2_STD,
    bigearthnet_normalization,
)

from ..conftest import DATA, quiet_trainer

ROOT = os.path.join(DATA, 'bigearthnet', 'v1')
TINY = {'root': ROOT, 'image_size': 24, 'crop_size': 32, 'eval_resize': 36}


def test_label_fraction_is_drawn_without_replacement() -> None:
    for n, fraction in ((100_000, 0.01), (1000, 0.5), (37, 0.3)):
        idx = sample_fraction(n, fraction, seed=42)
        assert len(idx) == int(n * fraction)
        assert len(set(idx)) == len(idx)  # no duplicates
        assert all(0 <= i < n for i in idx)
        assert idx == sorted(idx)
    assert sample_fraction(1000, 0.1, 42) == sample_fraction(1000, 0.1, 42)
    assert sample_fraction(1000, 0.1, 42) != sample_fraction(1000, 0.1, 43)
    assert sample_fraction(5, 1.0, 0) == [0, 1, 2, 3, 4]
    assert len(sample_fraction(10, 0.01, 0)) == 1  # never empty
    # Float noise does not lose a sample: 0.29 * 100 = 28.999999999999996.
    assert len(sample_fraction(100, 0.29, 0)) == 29
    assert len(sample_fraction(269_695, 0.01, 0)) == 2696  # floor, as the reference
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match='train_fraction'):
            sample_fraction(10, bad, 0)


def test_datamodule_train_subset() -> None:
    dm = BigEarthNetMMDataModule(train_fraction=0.5, fraction_seed=3, **TINY)
    dm.setup('fit')
    indices = dm.train_dataset.indices
    assert len(indices) == 3
    assert len(set(indices)) == 3
    assert len(dm.val_dataset) == 3
    dm.setup('test')
    assert len(dm.test_dataset) == 3
    with pytest.raises(ValueError, match='train_fraction'):
        BigEarthNetMMDataModule(train_fraction=0, **TINY)


def test_reference_normalisation() -> None:
    g = torch.Generator().manual_seed(0)
    s1 = torch.randn(2, 2, 10, 10, generator=g) * 2 - 15
    s1[0, 0, 0, 0] = 60.0  # outlier, clipped to the 99th percentile
    mean = torch.tensor(BIGEARTHNET_S2_MEAN).reshape(1, 12, 1, 1)
    std = torch.tensor(BIGEARTHNET_S2_STD).reshape(1, 12, 1, 1)
    s2 = torch.cat([mean, mean + 2 * std], dim=0).expand(2, 12, 4, 4)
    out = bigearthnet_normalization(insert_b10=True)({'image_s1': s1, 'image_s2': s2})

    # S1: per image and band 1-99 % clip, then (x - (mu - 2 sd)) / (4 sd) in [0, 1].
    flat = s1.reshape(2, 2, -1)
    lo = torch.quantile(flat, 0.01, dim=-1)[..., None, None]
    hi = torch.quantile(flat, 0.99, dim=-1)[..., None, None]
    clipped = torch.maximum(torch.minimum(s1, hi), lo)
    mu = torch.tensor(BIGEARTHNET_S1_MEAN).reshape(1, 2, 1, 1)
    sd = torch.tensor(BIGEARTHNET_S1_STD).reshape(1, 2, 1, 1)
    expected = ((clipped - (mu - 2 * sd)) / (4 * sd)).clamp(0, 1)
    assert torch.allclose(out['image_s1'], expected, atol=1e-5)
    assert out['image_s1'][0, 0, 0, 0] < 1  # the outlier did not survive

    # S2: mean -> 0.5, mean + 2 sd -> 1, and a zero B10 at index 10.
    y = out['image_s2']
    assert y.shape == (2, 13, 4, 4)
    assert torch.equal(y[:, 10], torch.zeros(2, 4, 4))
    keep = [i for i in range(13) if i != 10]
    assert torch.allclose(y[0, keep], torch.full((12, 4, 4), 0.5), atol=1e-5)
    assert torch.allclose(y[1, keep], torch.ones(12, 4, 4), atol=1e-5)

    raw = bigearthnet_normalization(method='none')({'image_s1': s1, 'image_s2': s2})
    assert torch.equal(raw['image_s1'], s1)
    assert torch.equal(raw['image_s2'], s2)
    with pytest.raises(ValueError, match='normalization'):
        bigearthnet_normalization(method='zscore')  # type: ignore[arg-type]


def test_training_transform_is_joint_and_evaluation_deterministic() -> None:
    dm = BigEarthNetMMDataModule(normalization='none', **TINY)
    g = torch.Generator().manual_seed(0)
    base = torch.rand(4, 2, 24, 24, generator=g)
    batch = {
        'image_s1': base,
        'image_s2': torch.cat([base, torch.rand(4, 10, 24, 24, generator=g)], 1),
        'label': torch.zeros(4, 19, dtype=torch.long),
    }
    out = dm.train_aug(batch)
    assert out['image_s1'].shape == (4, 2, 32, 32)
    assert out['image_s2'].shape == (4, 12, 32, 32)
    # The same crop and flips for both sensors (their first channels were equal) ...
    assert torch.allclose(out['image_s2'][:, :2], out['image_s1'], atol=1e-6)
    # ... and different crops for different samples / calls.
    assert not torch.allclose(dm.train_aug(batch)['image_s1'], out['image_s1'])
    # Evaluation: Resize(36) + CenterCrop(32), no randomness.
    first, second = dm.aug(batch), dm.aug(batch)
    assert torch.equal(first['image_s1'], second['image_s1'])
    manual = K.CenterCrop(32)(K.Resize(36)(base))
    assert torch.allclose(first['image_s1'], manual, atol=1e-6)
    assert torch.equal(first['label'], batch['label'])


def test_plain_image_key_and_options() -> None:
    dm = BigEarthNetMMDataModule(modalities=['s1'], plain_image_key=True, **TINY)
    out = dm.aug({'image_s1': torch.rand(1, 2, 24, 24), 'label': torch.zeros(1, 19)})
    assert set(out) == {'image', 'label'}
    with pytest.raises(ValueError, match='exactly one modality'):
        BigEarthNetMMDataModule(plain_image_key=True, **TINY)
    with pytest.raises(ValueError, match='eval_resize'):
        BigEarthNetMMDataModule(root=ROOT, crop_size=64, eval_resize=36)
    with pytest.raises(ValueError, match='v1 options'):
        BigEarthNetMMDataModule(version='v2', dataset_kwargs={'s1_dir': 'x'})
    with pytest.raises(ValueError, match=r"unknown keys \['s3_dir'\]"):
        BigEarthNetMMDataModule(dataset_kwargs={'s3_dir': 'x'}, **TINY)
    with pytest.raises(ValueError, match="'decur_uint8'"):
        BigEarthNetMMDataModule(normalization='uint8', **TINY)  # type: ignore[arg-type]
    # 'decur_uint8' is 'decur' rounded down to the reference's uint8 steps.
    coarse = BigEarthNetMMDataModule(
        modalities=['s1'], normalization='decur_uint8', **TINY
    )
    fine = BigEarthNetMMDataModule(modalities=['s1'], **TINY)
    batch = {'image_s1': torch.rand(1, 2, 24, 24) * -20, 'label': torch.zeros(1, 19)}
    # The scaling is the first step of the on-device pipeline.
    a = coarse.aug[0](dict(batch))['image_s1']
    b = fine.aug[0](dict(batch))['image_s1']
    assert torch.equal(a, torch.floor(b * 255) / 255)
    assert not torch.equal(a, b)


def test_real_example_pairs_train(shared_realdata: str, tmp_path: Path) -> None:
    root = os.path.join(shared_realdata, 'bigearthnet-example')
    pairs = pairs_from_s1_metadata(os.path.join(root, 'BigEarthNet-S1-Example'))
    lines = ''.join(f'{s2},{s1}\n' for s2, s1 in pairs)
    for split in ('train', 'val', 'test'):
        (tmp_path / f'bigearthnet-{split}.csv').write_text(lines)
    dm = BigEarthNetMMDataModule(
        root=root,
        dataset_kwargs={
            's1_dir': 'BigEarthNet-S1-Example',
            's2_dir': 'BigEarthNet-S2-Example',
            'split_dir': str(tmp_path),
        },
        insert_b10=True,
        crop_size=32,
        eval_resize=36,
        batch_size=3,
    )
    task = MultimodalClassificationTask(
        modalities=['s1', 's2'], model='resnet18', optimizer='sgd', lr=0.01
    )
    before = task.model.head.weight.detach().clone()
    conv_before = task.encoders['s2'].conv1.weight.detach().clone()
    trainer = quiet_trainer(
        max_steps=3,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(task, dm)
    assert trainer.global_step == 3
    assert torch.isfinite(trainer.callback_metrics['train_loss'])
    assert not torch.equal(task.model.head.weight, before)
    assert not torch.equal(task.encoders['s2'].conv1.weight, conv_before)
    # The normalised real inputs are in [0, 1] with the zero B10 slot.
    batch = dm.aug(next(iter(dm.val_dataloader())))
    assert batch['image_s2'].shape == (3, 13, 32, 32)
    assert batch['image_s1'].min() >= 0
    assert batch['image_s1'].max() <= 1
    assert batch['image_s2'][:, 10].abs().max() == 0
