import os
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from torchgeo.datasets import DatasetNotFoundError

from torchgeo_decur.datasets import SUNRGBD

from ..conftest import DATA

ROOT = os.path.join(DATA, 'sunrgbd')
INVALID = os.path.join(ROOT, 'invalid')


@pytest.mark.parametrize(
    ('split', 'names'),
    [
        ('train', ['000001', '000002', '000003', '000004']),
        ('test', ['000005', '000006']),  # list lines in the 'RGB/<name>.jpg' form
        ('all', [f'00000{i}' for i in range(1, 7)]),
    ],
)
def test_splits_follow_lists_or_folder(split: str, names: list[str]) -> None:
    ds = SUNRGBD(ROOT, split=split)  # type: ignore[arg-type]
    assert [os.path.basename(s['rgb'])[:-4] for s in ds.samples] == names
    # 000004's HHA map is a .jpg, the others .png: both are found.
    hha = {os.path.basename(s['hha']) for s in ds.samples}
    assert ('000004.jpg' in hha) == ('000004' in names)


def test_sample_contract_and_resizing() -> None:
    ds = SUNRGBD(ROOT, split='train', load_mask=True, size=(30, 40))
    for i in range(len(ds)):
        sample = ds[i]
        assert set(sample) == {'image_rgb', 'image_hha', 'mask'}
        for key in ('image_rgb', 'image_hha'):
            assert sample[key].shape == (3, 30, 40)
            assert sample[key].dtype == torch.float32
            assert sample[key].min() >= 0
            assert sample[key].max() <= 255
        assert sample['mask'].shape == (30, 40)
        assert sample['mask'].dtype == torch.int64
    # Nearest resampling keeps label values that exist in the file.
    stored = np.asarray(Image.open(ds.samples[0]['mask']))
    assert set(ds[0]['mask'].unique().tolist()) <= set(np.unique(stored).tolist())
    assert 'mask' not in SUNRGBD(ROOT, split='train')[0]


def test_native_size_and_square_size() -> None:
    native = SUNRGBD(ROOT, split='all', size=None)
    assert {tuple(native[i]['image_rgb'].shape[1:]) for i in range(2)} == {
        (36, 48),
        (40, 52),
    }
    assert SUNRGBD(ROOT, split='all', size=24)[1]['image_hha'].shape == (3, 24, 24)


def test_channels_in_opencv_bgr_order(tmp_path: Path) -> None:
    # A lossless pure-red RGB image and an HHA map with distinct channel values.
    for folder in ('RGB', 'HHA'):
        (tmp_path / folder).mkdir()
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red, 'RGB').save(tmp_path / 'RGB' / 'a.png')
    hha = np.stack([np.full((8, 8), v, np.uint8) for v in (10, 20, 30)], axis=-1)
    Image.fromarray(hha, 'RGB').save(tmp_path / 'HHA' / 'a.png')
    (tmp_path / 'train.txt').write_text('a\n')
    sample = SUNRGBD(str(tmp_path), rgb_suffix='.png', size=None)[0]
    assert sample['image_rgb'][:, 0, 0].tolist() == [0.0, 0.0, 255.0]  # B, G, R
    assert sample['image_hha'][:, 0, 0].tolist() == [30.0, 20.0, 10.0]


def test_unpaired_samples_name_the_missing_path() -> None:
    with pytest.raises(ValueError, match=r"unpaired SUN RGB-D sample '000011'") as e:
        SUNRGBD(INVALID, split='train')
    assert os.path.join(INVALID, 'HHA', '000011.png') in str(e.value)
    assert "on_invalid='skip'" in str(e.value)
    with pytest.raises(ValueError, match=r'000014\.png.* exists but .*000014\.jpg'):
        SUNRGBD(INVALID, split='all')


def test_skip_drops_unpaired_samples_with_warnings() -> None:
    with pytest.warns(UserWarning, match='skipping it') as record:
        ds = SUNRGBD(INVALID, split='train', load_mask=True, on_invalid='skip')
    assert [os.path.basename(s['rgb']) for s in ds.samples] == ['000010.jpg']
    messages = ' '.join(str(r.message) for r in record)
    assert '000011' in messages  # no HHA map
    label = os.path.join(INVALID, 'Label', '000012.png')
    assert f"'000012' has no label image {label!r}" in messages
    image = os.path.join(INVALID, 'RGB', '000013.jpg')
    assert f"'000013' has no RGB image {image!r}" in messages
    with pytest.warns(UserWarning, match='unpaired') as record:
        ds = SUNRGBD(INVALID, split='all', on_invalid='skip')
    # 000014 has an HHA map but no image; 000011 an image but no HHA map.
    assert [os.path.basename(s['rgb'])[:-4] for s in ds.samples] == [
        '000010',
        '000012',
        '000015',
        '000016',
    ]
    found = sorted(re.search(r"sample '(\d+)'", str(r.message))[1] for r in record)  # type: ignore[index]
    assert found == ['000011', '000014']


def test_bad_files_are_errors_when_read() -> None:
    ds = SUNRGBD(INVALID, split='test', size=None)
    assert ds[0]['image_rgb'].shape == (3, 36, 48)
    with pytest.raises(ValueError, match=r"000015\.png' has PIL mode 'I;16'"):
        ds[1]
    with pytest.raises(ValueError, match=r'000016\.png.* is \(18, 24\); the pair'):
        ds[2]


def test_missing_folder_list_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match='Missing folder'):
        SUNRGBD(str(tmp_path))
    for folder in ('RGB', 'HHA'):
        (tmp_path / folder).mkdir()
    with pytest.raises(DatasetNotFoundError, match=r'Missing list file: .*test\.txt'):
        SUNRGBD(str(tmp_path), split='test')
    with pytest.raises(ValueError, match="no paired SUN RGB-D samples for split 'all'"):
        SUNRGBD(str(tmp_path), split='all')
    with pytest.raises(ValueError, match='split must be'):
        SUNRGBD(ROOT, split='val')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='size must be positive'):
        SUNRGBD(ROOT, size=(0, 10))


def test_plot() -> None:
    matplotlib.use('Agg')
    ds = SUNRGBD(ROOT, split='test', load_mask=True)
    fig = ds.plot(ds[0], suptitle='sample')
    assert len(fig.axes) == 3
