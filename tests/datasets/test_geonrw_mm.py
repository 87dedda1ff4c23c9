import os
from pathlib import Path

import pytest
import torch
from torchgeo.datasets import DatasetNotFoundError, GeoNRW

from torchgeo_decur.datasets import GeoNRWMM

from ..conftest import DATA

ROOT = os.path.join(DATA, 'geonrw')


def test_whole_images_match_torchgeo_reader() -> None:
    ours = GeoNRWMM(ROOT, 'train', tile_size=None)
    # torchgeo's own __getitem__ on the same files (it only needs the file list).
    theirs = GeoNRW.__getitem__(ours, 3)
    sample = ours[3]
    assert set(sample) == {'image_rgb', 'image_dem', 'mask'}
    assert torch.equal(sample['image_rgb'], theirs['image'])  # R, G, B in [0, 1]
    assert torch.equal(sample['image_dem'], theirs['dem'])  # metres, one channel
    assert torch.equal(sample['mask'], theirs['mask'])
    assert sample['mask'].dtype == torch.long
    assert len(ours) == 6  # 3 training cities x 2 images present


def test_tiles_cover_the_image_in_row_major_order() -> None:
    whole = GeoNRWMM(ROOT, 'test', tile_size=None)
    tiles = GeoNRWMM(ROOT, 'test', tile_size=32)
    assert tiles.grid == (2, 2)
    assert len(tiles) == 4 * len(whole)
    image = whole[1]
    for t in range(4):
        r, c = divmod(t, 2)
        tile = tiles[4 + t]
        window = (slice(r * 32, (r + 1) * 32), slice(c * 32, (c + 1) * 32))
        assert torch.equal(
            tile['image_rgb'], image['image_rgb'][(slice(None), *window)]
        )
        assert torch.equal(
            tile['image_dem'], image['image_dem'][(slice(None), *window)]
        )
        assert torch.equal(tile['mask'], image['mask'][window])
    assert tiles.city(5).endswith('duesseldorf')
    with pytest.raises(IndexError):
        tiles[len(tiles)]


def test_modality_subset_and_options() -> None:
    sample = GeoNRWMM(ROOT, 'train', modalities=['rgb'], tile_size=32)[0]
    assert set(sample) == {'image_rgb', 'mask'}
    with pytest.raises(ValueError, match='does not divide'):
        GeoNRWMM(ROOT, tile_size=48)
    with pytest.raises(ValueError, match='modalities'):
        GeoNRWMM(ROOT, modalities=['rgb', 'hha'])  # type: ignore[list-item]


def test_broken_samples_and_missing_dataset(tmp_path: Path) -> None:
    invalid = os.path.join(ROOT, 'invalid')
    train = GeoNRWMM(invalid, 'train', tile_size=32)
    train[0]
    with pytest.raises(ValueError, match='has no dem file'):
        train[4]
    test = GeoNRWMM(invalid, 'test', tile_size=32)
    with pytest.raises(ValueError, match=r'is \(32, 32\) px, expected \(64, 64\)'):
        test[4]
    with pytest.raises(DatasetNotFoundError):
        GeoNRWMM(str(tmp_path))


def test_plot() -> None:
    ds = GeoNRWMM(ROOT, 'train', tile_size=32)
    sample = ds[0]
    sample['prediction'] = sample['mask']
    assert len(ds.plot(sample, suptitle='x').axes) == 4
