import os
from types import SimpleNamespace

import pytest
import torch

from torchgeo_decur.datamodules import TerraMeshDataModule
from torchgeo_decur.datamodules.terramesh import terramesh_normalization
from torchgeo_decur.transforms.normalize import ClipNormalize
from torchgeo_decur.transforms.terramesh import TERRAMESH_STATISTICS

from ..conftest import DATA

ROOT = os.path.join(DATA, 'terramesh')


def clip(folder: str) -> ClipNormalize:
    """The mean ± 2σ scaling of a folder's built-in statistics."""
    stats = TERRAMESH_STATISTICS[folder]
    return ClipNormalize(stats['mean'], stats['std'])


def test_batches_are_decur_ready_and_scaled_per_version() -> None:
    dm = TerraMeshDataModule(ROOT, batch_size=4, shuffle_buffer=8, val_split='val')
    dm.setup('fit')
    batches = list(dm.train_dataloader())
    assert len(batches) == 2
    batch = batches[0]
    assert batch['image_s1'].shape == (4, 2, 8, 8)
    assert batch['image_s2'].shape == (4, 13, 8, 8)
    assert batch['image_s2'].dtype == torch.int16
    out = dm.aug(batch)
    for i, version in enumerate(batch['version_s1'].tolist()):
        folder = ('S1GRD', 'S1RTC')[version]
        assert folder == (
            'S1RTC' if batch['key'][i].startswith('majortom') else 'S1GRD'
        )
        want = clip(folder)(batch['image_s1'][i : i + 1].float())
        torch.testing.assert_close(out['image_s1'][i : i + 1], want)
    want_s2 = clip('S2L1C')(batch['image_s2'].float())
    torch.testing.assert_close(out['image_s2'], want_s2)
    assert 0 <= float(out['image_s2'].min())
    assert float(out['image_s2'].max()) <= 1
    val = list(dm.val_dataloader())
    assert [k for b in val for k in b['key']] == [
        'majortom_val_0000000',
        'ssl4eos12_val_0000001',
    ]


def test_nominal_epoch_size_and_epoch_from_trainer() -> None:
    dm = TerraMeshDataModule(ROOT, batch_size=2, num_workers=2, samples_per_epoch=9)
    dm.trainer = SimpleNamespace(world_size=1, current_epoch=3)  # type: ignore[assignment]
    assert dm.samples_per_worker() == 4
    dm.setup('fit')
    loader = dm.train_dataloader()
    assert len(loader) == 4
    keys = [k for b in loader for k in b['key']]
    assert len(keys) == 8
    assert len(set(keys)) == 8
    assert dm.train_dataset.epoch == 3
    dm.trainer = SimpleNamespace(world_size=4, current_epoch=0)  # type: ignore[assignment]
    with pytest.raises(ValueError, match='less than one batch'):
        dm.samples_per_worker()


def test_normalization_options() -> None:
    with pytest.raises(ValueError, match="no statistics for modality folder 'x'"):
        terramesh_normalization(['x', 'S2L1C'])
    scale = terramesh_normalization(['s2'], channels={'s2': 12})
    x = torch.full((1, 12, 2, 2), 1000.0)
    want = clip('s2a')(x)
    torch.testing.assert_close(scale({'image_s2': x})['image_s2'], want)
    raw = TerraMeshDataModule(ROOT, modalities=['S2L1C', 'DEM'], normalization='none')
    batch = {
        'image_s2': torch.ones(1, 13, 2, 2, dtype=torch.int16),
        'image_dem': torch.ones(1, 1, 2, 2),
    }
    assert raw.aug(batch)['image_s2'].dtype == torch.float32
