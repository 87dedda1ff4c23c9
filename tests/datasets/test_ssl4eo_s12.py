import os
import random
import re

import pytest
import rasterio
import torch
from torchgeo.datasets import DatasetNotFoundError

from torchgeo_decur.datasets import SSL4EOS12Pairs
from torchgeo_decur.datasets.ssl4eo_s12 import acquisition_order

from ..conftest import DATA, SSL4EO_S12_LOCATIONS

ROOT = os.path.join(DATA, 'ssl4eo_s12')
INVALID = os.path.join(ROOT, 'invalid')


def test_pairs_locations_found_on_disk() -> None:
    ds = SSL4EOS12Pairs(ROOT, size=24)
    assert len(ds) == len(SSL4EO_S12_LOCATIONS)
    assert ds.locations == SSL4EO_S12_LOCATIONS
    sample = ds[0]
    assert set(sample) == {'image_s1', 'image_s2'}
    assert sample['image_s1'].shape == (4, 24, 24)
    assert sample['image_s2'].shape == (26, 24, 24)
    # Storage types: float32 dB, uint16 DN (converted on the device).
    assert sample['image_s1'].dtype == torch.float32
    assert sample['image_s2'].dtype == torch.uint16
    # Raw dB values including the fixture's zero-backscatter pixels.
    assert (
        torch.isneginf(sample['image_s1']).any()
        or torch.isnan(sample['image_s1']).any()
    )


def test_native_grid_needs_resampling() -> None:
    ds = SSL4EOS12Pairs(ROOT, size=None)
    with pytest.raises(ValueError, match='differ in size'):
        ds[0]
    resized = SSL4EOS12Pairs(ROOT, size=12, views=1)
    assert resized[1]['image_s2'].shape == (13, 12, 12)


def test_l2a_product() -> None:
    ds = SSL4EOS12Pairs(ROOT, s2_product='s2a', size=24, views=1)
    assert ds[2]['image_s2'].shape == (12, 24, 24)


def test_season_modes() -> None:
    fixed = SSL4EOS12Pairs(ROOT, size=24, season_mode='fixed', season=2)
    a, b = fixed[0], fixed[0]
    assert torch.equal(a['image_s2'].nan_to_num(), b['image_s2'].nan_to_num())
    # Both views are the same timestamp.
    assert torch.equal(a['image_s2'][:13], a['image_s2'][13:])

    same = SSL4EOS12Pairs(ROOT, size=24, season_mode='same')
    s = same[1]
    assert torch.equal(s['image_s2'][:13], s['image_s2'][13:])

    # The draws behind the modes, over many samples of 4 timestamps each.
    random.seed(0)
    draws = {
        mode: [
            SSL4EOS12Pairs(ROOT, size=24, season_mode=mode)._choose_seasons([4, 4])
            for _ in range(50)
        ]
        for mode in ('random', 'same', 'paired')
    }
    for s1, s2 in draws['same']:
        # One timestamp per modality.
        assert s1[0] == s1[1]
        assert s2[0] == s2[1]
    assert any(s1 != s2 for s1, s2 in draws['same'])  # drawn per modality
    assert all(s1 == s2 == [s1[0]] * 2 for s1, s2 in draws['paired'])
    assert any(s1[0] != s1[1] for s1, _ in draws['random'])
    assert any(s1 != s2 for s1, s2 in draws['random'])
    with pytest.raises(ValueError, match="season_mode must be 'random', 'same'"):
        SSL4EOS12Pairs(ROOT, size=24, season_mode='yearly')  # type: ignore[arg-type]

    rnd = SSL4EOS12Pairs(ROOT, size=24, season_mode='random')
    random.seed(0)
    differs = [
        not torch.equal(x[:13], x[13:]) for x in (rnd[0]['image_s2'] for _ in range(10))
    ]
    assert any(differs)

    with pytest.raises(ValueError, match='season=7 is out of range'):
        SSL4EOS12Pairs(ROOT, size=24, season_mode='fixed', season=7)[0]


def test_unpaired_location_is_an_error_naming_the_path() -> None:
    with pytest.raises(
        ValueError, match=r"unpaired SSL4EO-S12 location '0000005'.*s1/0000005"
    ):
        SSL4EOS12Pairs(INVALID, size=24)


def test_invalid_locations_skipped_with_warning() -> None:
    with pytest.warns(UserWarning, match='unpaired') as record:
        ds = SSL4EOS12Pairs(INVALID, size=24, on_invalid='skip', check_files=True)
    messages = ' '.join(str(w.message) for w in record)
    assert "'0000006'" in messages
    assert "malformed SSL4EO-S12 location '0000007'" in messages
    assert 'B8A.tif' in messages
    assert "malformed SSL4EO-S12 location '0000008'" in messages
    assert 'has 2 bands' in messages
    assert ds.locations == ['0000000', '0000001']


def test_skip_checks_every_file_up_front() -> None:
    # Without check_files too: nothing malformed is left to fail mid-epoch.
    with pytest.warns(UserWarning, match='malformed'):
        ds = SSL4EOS12Pairs(INVALID, size=24, on_invalid='skip')
    assert ds.locations == ['0000000', '0000001']
    assert set(ds.skipped) == {'0000005', '0000006', '0000007', '0000008'}


def test_malformed_location_errors_when_read() -> None:
    # Without the up-front check (on_invalid='error', check_files=False) a
    # malformed location fails when read, naming the file.
    with pytest.warns(UserWarning, match='unpaired'):
        ds = SSL4EOS12Pairs(INVALID, size=24, on_invalid='skip')
    ds.locations = ['0000000', '0000001', '0000007', '0000008']
    with pytest.raises(
        ValueError, match=r"s2c/0000007/.*lacks band file\(s\) \['B8A.tif'\]"
    ):
        ds[2]
    with pytest.raises(ValueError, match=r'VH.tif.* has 2 bands'):
        ds[3]


def test_missing_root() -> None:
    with pytest.raises(DatasetNotFoundError, match='Missing folder'):
        SSL4EOS12Pairs(os.path.join(DATA, 'does-not-exist'))


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match='s2_product'):
        SSL4EOS12Pairs(ROOT, s2_product='s2b')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='season_mode'):
        SSL4EOS12Pairs(ROOT, season_mode='winter')  # type: ignore[arg-type]


def test_plot() -> None:
    import matplotlib

    matplotlib.use('Agg')
    ds = SSL4EOS12Pairs(ROOT, size=24)
    fig = ds.plot(ds[0], suptitle='sample')
    assert len(fig.axes) == 2


def test_real_sample_loads(shared_realdata: str) -> None:
    ds = SSL4EOS12Pairs(
        os.path.join(shared_realdata, 'ssl4eo-s12-sample'), check_files=True
    )
    assert ds.locations == ['0000200']
    sample = ds[0]
    assert sample['image_s1'].shape == (4, 264, 264)
    assert sample['image_s2'].shape == (26, 264, 264)
    s1 = sample['image_s1'][torch.isfinite(sample['image_s1'])]
    assert -60 < s1.median() < 10  # dB
    assert sample['image_s2'].dtype == torch.uint16
    assert 100 < sample['image_s2'].float().median() < 10000  # DN


def band(path: str) -> torch.Tensor:
    """One band as read from disk (the fixture's bands are already 24 px)."""
    with rasterio.open(path) as src:
        return torch.from_numpy(src.read(1, out_dtype='float32'))


def test_seasons_follow_acquisition_date_not_folder_name() -> None:
    location = '0000000'
    names = sorted(os.listdir(os.path.join(ROOT, 's1', location)))
    dates = [re.search(r'_(\d{8})T', name).group(1) for name in names]  # type: ignore[union-attr]
    # The fixture mixes S1A and S1B products: name order is not date order.
    assert {name[:3] for name in names} == {'S1A', 'S1B'}
    assert dates != sorted(dates)
    s2_names = sorted(os.listdir(os.path.join(ROOT, 's2c', location)))
    for season, date in enumerate(sorted(dates)):
        ds = SSL4EOS12Pairs(ROOT, size=24, views=1, season_mode='fixed', season=season)
        sample = ds[0]
        (s1,) = [n for n in names if f'_{date}T' in n]
        (s2,) = [n for n in s2_names if n.startswith(date)]
        want_vv = band(os.path.join(ROOT, 's1', location, s1, 'VV.tif'))
        want_b2 = band(os.path.join(ROOT, 's2c', location, s2, 'B2.tif'))
        # Season k is the k-th acquisition of both products: same date here.
        assert torch.equal(sample['image_s1'][0].nan_to_num(), want_vv.nan_to_num())
        assert torch.equal(sample['image_s2'][1].float(), want_b2)


def test_acquisition_order_of_real_product_names(tmp_path: str) -> None:
    s1 = [
        'S1B_IW_GRDH_1SDV_20201210T053214_20201210T053239_024631_02EE3F_1F4A',
        'S1A_IW_GRDH_1SDV_20200321T053211_20200321T053236_031758_03A9E1_6C3F',
        'S1A_IW_GRDH_1SDV_20200913T053218_20200913T053243_034308_03FD8A_9E0E',
        'S1B_IW_GRDH_1SDV_20200614T053210_20200614T053235_022006_029C35_51A1',
    ]
    assert [n[17:25] for n in acquisition_order(s1)] == [
        '20200321',
        '20200614',
        '20200913',
        '20201210',
    ]
    s2 = [
        '20200813T054639_20200813T054952_T43RCP',
        '20200604T054639_20200604T054831_T43RCP',
    ]
    assert acquisition_order(s2) == s2[::-1]
    with pytest.raises(ValueError, match=r"'/x/scene_1'.*no acquisition time"):
        acquisition_order(['scene_1'], '/x')
