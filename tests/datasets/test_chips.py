import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from torchgeo.datasets import DatasetNotFoundError

from torchgeo_decur.datasets import PairedChips

from ..conftest import DATA
from ..faults.library import corrupt_band

ROOT = os.path.join(DATA, 'chips')
FOLDERS = {'s1': os.path.join(ROOT, 's1'), 's2': os.path.join(ROOT, 's2')}
PATTERN = {'s1': 'S1_(?P<key>.+)', 's2': '(?P<key>.+)_S2'}
KEYS = [f'tile_{i:02d}' for i in range(8)]


def copy_fixture(tmp_path: Path) -> dict[str, str]:
    folders = {}
    for m, folder in FOLDERS.items():
        folders[m] = str(tmp_path / m)
        shutil.copytree(folder, folders[m])
    return folders


def test_regex_pairs_and_lists_every_unmatched_chip() -> None:
    with pytest.raises(ValueError, match='no match in modality') as info:
        PairedChips(FOLDERS, pattern=PATTERN)
    message = str(info.value)
    assert 'S1_tile_98.tif' in message
    assert 'tile_99_S2.tif' in message
    assert repr(FOLDERS['s1']) in message
    assert "on_invalid='skip'" in message


def test_skip_policy_leaves_unmatched_keys_out() -> None:
    with pytest.warns(UserWarning, match=r'S1_tile_98\.tif.*tile_99_S2\.tif'):
        ds = PairedChips(FOLDERS, pattern=PATTERN, on_invalid='skip')
    assert ds.keys == KEYS
    assert set(ds.skipped) == {'tile_98', 'tile_99'}
    assert ds.files['s1']['tile_03'] == os.path.join(FOLDERS['s1'], 'S1_tile_03.tif')
    assert ds.files['s2']['tile_03'] == os.path.join(FOLDERS['s2'], 'tile_03_S2.tif')


def test_samples_are_raw_values_of_the_files() -> None:
    ds = PairedChips(FOLDERS, pattern=PATTERN, on_invalid='skip')
    sample = ds[KEYS.index('tile_02')]
    assert set(sample) == {'image_s1', 'image_s2'}
    assert sample['image_s1'].shape == (2, 16, 16)
    assert sample['image_s2'].shape == (13, 16, 16)
    assert sample['image_s1'].dtype == sample['image_s2'].dtype == torch.float32
    with rasterio.open(os.path.join(FOLDERS['s2'], 'tile_02_S2.tif')) as src:
        expected = src.read().astype('float32')
    np.testing.assert_array_equal(sample['image_s2'].numpy(), expected)
    assert ds.channels == {'s1': 2, 's2': 13}
    assert ds.nodata == {'s1': None, 's2': 0.0}
    # The NaN corner of the fixture is passed on, not filled.
    assert torch.isnan(ds[KEYS.index('tile_01')]['image_s1'][:, :4, :4]).all()


def test_stems_pair_without_a_pattern(tmp_path: Path) -> None:
    for m, folder in FOLDERS.items():
        (tmp_path / m).mkdir()
        for key in ('tile_00', 'tile_05'):
            name = f'S1_{key}.tif' if m == 's1' else f'{key}_S2.tif'
            shutil.copy(os.path.join(folder, name), tmp_path / m / f'{key}.TIF')
        (tmp_path / m / 'tile_00.tif.aux.xml').write_text('<PAMDataset/>')
    folders = {m: str(tmp_path / m) for m in FOLDERS}
    ds = PairedChips(folders)
    assert ds.keys == ['tile_00', 'tile_05']
    assert ds[1]['image_s2'].shape == (13, 16, 16)
    # Other extensions are not chips.
    with pytest.raises(ValueError, match='no chip is present'):
        PairedChips(folders, extensions=['.jp2'])


def test_different_stems_need_a_pattern() -> None:
    with pytest.raises(ValueError, match='No key is shared at all'):
        PairedChips(FOLDERS)


def test_one_pattern_first_group_and_whole_match(tmp_path: Path) -> None:
    folders = copy_fixture(tmp_path)
    # Unnamed group: the first group is the key; one pattern for all modalities.
    ds = PairedChips(folders, pattern=r'(?:S1_)?(tile_\d+)(?:_S2)?', on_invalid='skip')
    assert ds.keys == KEYS
    # No group: the whole stem is the key (so nothing pairs here).
    with pytest.raises(ValueError, match='No key is shared'):
        PairedChips(folders, pattern=r'(?:S1_tile|tile)_\d+(?:_S2)?')


def test_names_the_pattern_rejects_are_listed(tmp_path: Path) -> None:
    folders = copy_fixture(tmp_path)
    shutil.copy(
        os.path.join(folders['s2'], 'tile_00_S2.tif'),
        os.path.join(folders['s2'], 'preview.tif'),
    )
    with pytest.raises(
        ValueError, match=r"'preview\.tif'.*do not match|do not match.*'preview\.tif'"
    ):
        PairedChips(folders, pattern=PATTERN)


def test_two_files_of_one_key_are_invalid(tmp_path: Path) -> None:
    folders = copy_fixture(tmp_path)
    shutil.copy(
        os.path.join(folders['s1'], 'S1_tile_04.tif'),
        os.path.join(folders['s1'], 'S1_tile_04.tiff'),
    )
    with pytest.raises(ValueError, match=r"several files for key.*'tile_04'"):
        PairedChips(folders, pattern=PATTERN)
    with pytest.warns(UserWarning, match='several files'):
        ds = PairedChips(folders, pattern=PATTERN, on_invalid='skip')
    assert 'tile_04' not in ds.keys
    assert len(ds) == 7


def test_band_selection_by_index_and_description() -> None:
    full = PairedChips(FOLDERS, pattern=PATTERN, on_invalid='skip')
    picked = PairedChips(
        FOLDERS,
        pattern=PATTERN,
        bands={'s2': ['B4', 3, 'B2'], 's1': ['VH']},
        on_invalid='skip',
    )
    assert picked.channels == {'s1': 1, 's2': 3}
    a, b = full[5], picked[5]
    assert torch.equal(b['image_s2'], a['image_s2'][[3, 2, 1]])
    assert torch.equal(b['image_s1'], a['image_s1'][[1]])


def test_band_selection_errors_name_file_and_bands() -> None:
    first = os.path.join(FOLDERS['s2'], 'tile_00_S2.tif')
    with pytest.raises(ValueError, match=re.escape(f'{first!r} has 13 bands')):
        PairedChips(FOLDERS, pattern=PATTERN, bands={'s2': [14]}, on_invalid='skip')
    with pytest.raises(ValueError, match=r"'B13'.*'B8A'"):
        PairedChips(FOLDERS, pattern=PATTERN, bands={'s2': ['B13']}, on_invalid='skip')
    with pytest.raises(ValueError, match="modalities \\['dem'\\]"):
        PairedChips(FOLDERS, pattern=PATTERN, bands={'dem': [1]})


def test_corrupt_chip_is_skipped_or_named(tmp_path: Path) -> None:
    folders = copy_fixture(tmp_path)
    bad = os.path.join(folders['s2'], 'tile_05_S2.tif')
    data = Path(bad).read_bytes()
    Path(bad).write_bytes(data[:300])  # truncated: header but no image data
    with pytest.warns(UserWarning, match=re.escape(repr(bad))):
        ds = PairedChips(folders, pattern=PATTERN, on_invalid='skip')
    assert ds.keys == [k for k in KEYS if k != 'tile_05']
    assert repr(bad) in ds.skipped['tile_05']
    Path(folders['s1'], 'S1_tile_98.tif').unlink()
    Path(folders['s2'], 'tile_99_S2.tif').unlink()
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        PairedChips(folders, pattern=PATTERN, on_invalid='error', check_files=True)
    # Without the up-front check the read fails, naming the full path.
    lazy = PairedChips(folders, pattern=PATTERN)
    assert len(lazy) == 8
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        lazy[KEYS.index('tile_05')]


def test_chip_of_another_size_is_named(tmp_path: Path) -> None:
    folders = copy_fixture(tmp_path)
    odd = os.path.join(folders['s1'], 'S1_tile_06.tif')
    with rasterio.open(odd) as src:
        profile = src.profile | {'width': 8, 'height': 8}
        data = src.read()[:, :8, :8]
    os.remove(odd)
    with rasterio.open(odd, 'w', **profile) as dst:
        dst.write(data)
    with pytest.warns(UserWarning, match=r'8 x 8 px.*16 x 16 px'):
        ds = PairedChips(folders, pattern=PATTERN, on_invalid='skip')
    assert 'tile_06' in ds.skipped
    assert 'tile_06' not in ds.keys


def test_missing_folder_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"modality 's2'"):
        PairedChips({'s1': FOLDERS['s1'], 's2': str(tmp_path / 'nope')})
    with pytest.raises(ValueError, match='not a valid regular expression'):
        PairedChips(FOLDERS, pattern='S1_(')
    with pytest.raises(ValueError, match='on_invalid'):
        PairedChips(FOLDERS, on_invalid='ignore')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='at least one modality'):
        PairedChips({})


def test_select_restricts_and_checks_keys() -> None:
    ds = PairedChips(FOLDERS, pattern=PATTERN, on_invalid='skip')
    sub = ds.select(['tile_03', 'tile_01'])
    assert sub.keys == ['tile_03', 'tile_01']
    assert len(ds) == 8
    assert torch.equal(sub[1]['image_s2'], ds[1]['image_s2'])
    with pytest.raises(ValueError, match='tile_98'):
        ds.select(['tile_98'])


@pytest.mark.parametrize('band', [1, 2])
def test_undecodable_band_is_found_by_the_check(tmp_path: Path, band: int) -> None:
    # Issue 24 B08/B09: the check decodes every band, not only band 1's corner,
    # and names the path and modality, also in the skipped list.
    folders = copy_fixture(tmp_path)
    bad = os.path.join(folders['s2'], 'tile_03_S2.tif')
    corrupt_band(bad, band)
    with rasterio.open(bad) as src:
        src.read(1 if band == 2 else 2)  # the other bands still read
    with pytest.warns(UserWarning, match=re.escape(repr(bad))):
        ds = PairedChips(folders, pattern=PATTERN, on_invalid='skip')
    assert 'tile_03' not in ds.keys
    assert repr(bad) in ds.skipped['tile_03']
    assert "modality 's2'" in ds.skipped['tile_03']
    Path(folders['s1'], 'S1_tile_98.tif').unlink()
    Path(folders['s2'], 'tile_99_S2.tif').unlink()
    with pytest.raises(ValueError, match=re.escape(repr(bad))) as info:
        PairedChips(folders, pattern=PATTERN, check_files=True)
    assert "modality 's2'" in str(info.value)
    lazy = PairedChips(folders, pattern=PATTERN)
    with pytest.raises(ValueError, match=re.escape(repr(bad))) as info:
        lazy[lazy.keys.index('tile_03')]
    assert "modality 's2'" in str(info.value)


BASELINES = os.path.join(DATA, 's2_baselines')


def baseline_chip(folder: str, mode: str = 'auto') -> torch.Tensor:
    ds = PairedChips(
        {'s2': os.path.join(BASELINES, folder)},
        s2_harmonize=mode,  # type: ignore[arg-type]
    )
    assert len(ds) == 1
    return ds[0]['image_s2']


def test_offset_chips_read_like_pre_offset_ones() -> None:
    old = baseline_chip('pb0301')
    # By the baseline in the name, by the date in the name, by the offset tag.
    for folder in ('pb0509', 'dated', 'tagged'):
        assert torch.equal(baseline_chip(folder), old), folder
    assert (old[:, :2, :2] == 0).all()
    raw = baseline_chip('pb0509', 'never')
    valid = old != 0
    assert torch.equal((raw - old)[valid], torch.full_like(old[valid], 1000))
    assert (raw[~valid] == 0).all()
    assert torch.equal(baseline_chip('pb0301', 'never'), old)


def test_an_undated_chip_folder_warns_once() -> None:
    ds = PairedChips({'s2': os.path.join(BASELINES, 'undated')})
    with pytest.warns(UserWarning, match='cannot tell') as record:
        first, second = ds[0]['image_s2'], ds[0]['image_s2']
    assert len([w for w in record if 'cannot tell' in str(w.message)]) == 1
    assert torch.equal(first, second)
    assert torch.equal(first, baseline_chip('pb0301'))
    # Modalities not named s2... are never touched.
    other = PairedChips({'opt': os.path.join(BASELINES, 'pb0509')})
    assert torch.equal(other[0]['image_opt'], baseline_chip('pb0509', 'never'))
