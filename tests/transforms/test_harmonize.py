from datetime import date

import pytest
import torch

from torchgeo_decur.transforms.harmonize import (
    S2Harmonizer,
    baseline_from_name,
    carries_offset,
    check_s2_harmonize,
    date_from_name,
    date_from_ns,
    offset_from_tags,
    remove_offset,
)


def test_baseline_and_date_from_names() -> None:
    name = 'S2B_MSIL2A_20230615T103629_N0509_R008_T32TMT_20230615T170000.SAFE'
    assert baseline_from_name(name) == (5, 9)
    assert baseline_from_name('S2A_MSIL1C_20210101T000000_N0301_R1.tif') == (3, 1)
    assert baseline_from_name('tile_0001.tif') is None
    assert date_from_name(name) == date(2023, 6, 15)
    assert date_from_name('chip_2022-01-24_a') == date(2022, 1, 24)
    assert date_from_name('tile_0001') is None
    assert date_from_name('x_20221345_20220126') == date(2022, 1, 26)  # 13th month
    assert date_from_ns(0) is None
    assert date_from_ns(1_643_068_800 * 10**9) == date(2022, 1, 25)


def test_offset_tags_and_the_decision_order() -> None:
    assert offset_from_tags({'BOA_ADD_OFFSET_B2': '-1000'}) is True
    assert offset_from_tags({'RADIO_ADD_OFFSET': '0'}) is False
    assert offset_from_tags({'PROCESSING_BASELINE': '04.00'}) is True
    assert offset_from_tags({'PROCESSING_BASELINE': '03.01'}) is False
    assert offset_from_tags({'AREA_OR_POINT': 'Area'}) is None
    # The baseline wins over the date (Collection-1 reprocessing of 2019 data).
    old_date = date(2019, 5, 1)
    assert carries_offset(name='S2A_MSIL1C_20190501T0_N0500_R1', when=old_date)
    assert carries_offset(when=date(2022, 1, 25)) is True
    assert carries_offset(when=date(2022, 1, 24)) is False
    assert carries_offset(name='tile_1') is None


def test_remove_offset_keeps_no_data_and_never_wraps() -> None:
    x = torch.tensor([0, 1, 999, 1000, 1001, 4000], dtype=torch.uint16)
    y = remove_offset(x)
    assert y.dtype == torch.uint16
    assert y.tolist() == [0, 1, 1, 1, 1, 3000]
    f = remove_offset(torch.tensor([0.0, 1500.0, float('nan')]))
    assert f[:2].tolist() == [0.0, 500.0]
    assert torch.isnan(f[2])
    assert remove_offset(torch.tensor([-5, 0, 2000], dtype=torch.int16)).tolist() == [
        1,
        0,
        1000,
    ]
    with pytest.raises(ValueError, match='uint8'):
        remove_offset(torch.zeros(2, dtype=torch.uint8))


def test_harmonizer_modes_and_one_warning_per_source() -> None:
    x = torch.full((2,), 1500.0)
    assert torch.equal(S2Harmonizer('always')(x, 'a'), torch.full((2,), 500.0))
    assert S2Harmonizer('never')(x, 'a', when=date(2024, 1, 1)) is x
    auto = S2Harmonizer()
    with pytest.warns(UserWarning, match='cannot tell') as record:
        same = [auto(x, source) for source in ('src-a', 'src-a', 'src-a', 'src-b')]
    assert all(y is x for y in same)
    assert [str(w.message).split(':')[0] for w in record] == ['src-a', 'src-b']
    assert torch.equal(auto(x, 'src-a', when=date(2023, 1, 1)), torch.full((2,), 500.0))
    with pytest.raises(ValueError, match='s2_harmonize must be one of'):
        check_s2_harmonize('yes')
