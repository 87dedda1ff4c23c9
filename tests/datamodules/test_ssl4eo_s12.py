import os
from types import SimpleNamespace

import pytest
import torch

from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
from torchgeo_decur.transforms import (
    SSL4EO_S12_S2_MEAN,
    SSL4EO_S12_S2_STD,
    ssl4eo_s12_normalization,
)

from ..conftest import DATA

ROOT = os.path.join(DATA, 'ssl4eo_s12')


def test_loader_and_device_normalisation() -> None:
    dm = SSL4EOS12PairsDataModule(root=ROOT, size=24, batch_size=2)
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    assert batch['image_s1'].shape == (2, 4, 24, 24)
    assert not torch.isfinite(batch['image_s1']).all()  # fixture has -inf / NaN
    out = dm.aug(batch)
    for key in ('image_s1', 'image_s2'):
        assert torch.isfinite(out[key]).all(), key
        assert out[key].min() >= 0
        assert out[key].max() <= 1


def test_normalisation_uses_band_statistics() -> None:
    t = ssl4eo_s12_normalization()
    mean = torch.tensor(SSL4EO_S12_S2_MEAN).reshape(1, 13, 1, 1)
    std = torch.tensor(SSL4EO_S12_S2_STD).reshape(1, 13, 1, 1)
    x = {
        'image_s1': torch.zeros(1, 2, 1, 1),
        'image_s2': torch.cat([mean, mean + 2 * std], 1),
    }
    y = t(x)['image_s2'].flatten()
    assert torch.allclose(y[:13], torch.full((13,), 0.5), atol=1e-6)
    assert torch.allclose(y[13:], torch.ones(13), atol=1e-6)
    l2a = ssl4eo_s12_normalization('s2a')
    assert (
        l2a(
            {'image_s1': torch.zeros(1, 2, 1, 1), 'image_s2': torch.zeros(1, 12, 1, 1)}
        )['image_s2'].shape[1]
        == 12
    )


def test_raw_option_and_errors() -> None:
    dm = SSL4EOS12PairsDataModule(root=ROOT, normalization='none')
    batch = {
        'image_s1': torch.full((1, 2, 1, 1), -12.0),
        'image_s2': torch.full((1, 13, 1, 1), 65535, dtype=torch.uint16),
    }
    out = dm.aug(batch)
    assert torch.equal(out['image_s1'], batch['image_s1'])
    # Raw values, as float32 on the device.
    assert out['image_s2'].dtype == torch.float32
    assert (out['image_s2'] == 65535.0).all()
    with pytest.raises(ValueError, match='normalization'):
        SSL4EOS12PairsDataModule(root=ROOT, normalization='zscore')  # type: ignore[arg-type]


def test_batches_pinned_only_for_a_cuda_trainer() -> None:
    dm = SSL4EOS12PairsDataModule(root=ROOT, size=24, batch_size=2)
    dm.setup('fit')
    assert not dm.train_dataloader().pin_memory  # no trainer
    for device, pinned in (('cpu', False), ('cuda', True)):
        dm.trainer = SimpleNamespace(  # type: ignore[assignment]
            strategy=SimpleNamespace(root_device=torch.device(device)), world_size=1
        )
        assert dm.train_dataloader().pin_memory is pinned, device
        assert dm.val_dataloader().pin_memory is pinned, device
