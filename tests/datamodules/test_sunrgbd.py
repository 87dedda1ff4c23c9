import os

import pytest
import torch

from torchgeo_decur.datamodules import SUNRGBDDataModule
from torchgeo_decur.transforms import sunrgbd_normalization

from ..conftest import DATA

ROOT = os.path.join(DATA, 'sunrgbd')


def test_imagenet_statistics_by_channel_index() -> None:
    # Reference: cv2 B,G,R image -> /255 -> Normalize([0.485, 0.456, 0.406],
    # [0.229, 0.224, 0.225]) by index, so the "red" statistics land on blue.
    x = torch.tensor([[10.0, 120.0, 250.0]]).reshape(1, 3, 1, 1)
    out = sunrgbd_normalization()({'image_rgb': x, 'image_hha': x.clone()})
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    expected = (torch.tensor([10.0, 120.0, 250.0]) / 255 - mean) / std
    for key in ('image_rgb', 'image_hha'):
        assert torch.allclose(out[key].flatten(), expected, atol=1e-6)


def test_fit_loader_normalises_on_device_and_keeps_mask() -> None:
    dm = SUNRGBDDataModule(
        root=ROOT, split='all', size=(36, 48), batch_size=3, load_mask=True
    )
    dm.setup('fit')
    assert len(dm.train_dataset) == 6  # type: ignore[arg-type]
    batch = next(iter(dm.train_dataloader()))
    assert batch['image_rgb'].shape == (3, 3, 36, 48)
    assert batch['mask'].dtype == torch.int64
    out = dm.aug(batch)
    assert torch.equal(out['mask'], batch['mask'])
    for key in ('image_rgb', 'image_hha'):
        assert out[key].min() >= -0.485 / 0.229 - 1e-5
        assert out[key].max() <= (1 - 0.406) / 0.225 + 1e-5
        assert out[key].min() < 0 < out[key].max()


def test_test_stage_uses_test_list_and_raw_option() -> None:
    dm = SUNRGBDDataModule(root=ROOT, split='train', normalization='none')
    dm.setup('test')
    assert len(dm.test_dataset) == 2  # type: ignore[arg-type]
    batch = {'image_rgb': torch.full((1, 3, 2, 2), 200.0)}
    assert torch.equal(dm.aug(batch)['image_rgb'], batch['image_rgb'])
    with pytest.raises(ValueError, match='normalization must be one of'):
        SUNRGBDDataModule(root=ROOT, normalization='bgr')  # type: ignore[arg-type]
