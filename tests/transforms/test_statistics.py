import math

import pytest
import torch

from torchgeo_decur.transforms import (
    BandStatistics,
    ClipNormalize,
    estimate_band_statistics,
    valid_mask,
)


def test_valid_mask_excludes_nodata_and_non_finite() -> None:
    x = torch.tensor([1.0, 0.0, math.nan, math.inf, -math.inf, 2.0])
    assert valid_mask(x, 0.0).tolist() == [True, False, False, False, False, True]
    assert valid_mask(x, None).tolist() == [True, True, False, False, False, True]
    assert valid_mask(x, math.nan).tolist() == [True, True, False, False, False, True]


def test_streaming_statistics_equal_direct_ones_on_the_valid_values() -> None:
    gen = torch.Generator().manual_seed(0)
    # Large mean, small spread: summing squares in float32 would cancel.
    patches = [
        10000.0
        + 5.0 * torch.randn(3, 7, 5, generator=gen)
        + torch.arange(3)[:, None, None]
        for _ in range(6)
    ]
    patches[1][0, :3] = -9999.0  # nodata in band 0 only
    patches[2][2, 1, 1] = math.nan
    patches[4][1] = -9999.0  # a whole band of one patch
    mean, std = estimate_band_statistics(patches, nodata=-9999.0)
    stacked = torch.stack(patches).double()  # 6 x 3 x 7 x 5
    for b in range(3):
        values = stacked[:, b].flatten()
        values = values[torch.isfinite(values) & (values != -9999.0)]
        assert mean[b].item() == pytest.approx(values.mean().item(), rel=1e-12)
        assert std[b].item() == pytest.approx(values.std(correction=0).item(), rel=1e-9)
    assert mean.dtype == torch.float64
    assert mean.shape == (3,)


def test_statistics_do_not_depend_on_how_patches_are_split() -> None:
    gen = torch.Generator().manual_seed(1)
    whole = torch.randn(2, 8, 8, generator=gen) * 3 + 1
    parts = [whole[:, :2], whole[:, 2:3], whole[:, 3:]]
    a = estimate_band_statistics([whole])
    b = estimate_band_statistics(parts)
    assert torch.allclose(a[0], b[0])
    assert torch.allclose(a[1], b[1])


def test_statistics_feed_the_checkpoint_scaling() -> None:
    x = torch.tensor([[[0.0, 2.0], [4.0, 6.0]]])
    mean, std = estimate_band_statistics([x])
    y = ClipNormalize(mean.tolist(), std.tolist())(x[None])
    # mean ± 2σ is mapped to [0, 1]: the mean lands at 0.5.
    assert y.mean().item() == pytest.approx(0.5)


def test_band_without_valid_values_is_named() -> None:
    x = torch.zeros(3, 2, 2)
    x[0] = 1.0
    x[2] = 5.0
    with pytest.raises(ValueError, match=r'bands \[1\] \(0-based\) hold no valid'):
        estimate_band_statistics([x], nodata=0.0)


def test_bad_samples_are_refused() -> None:
    with pytest.raises(ValueError, match='zero samples'):
        estimate_band_statistics([])
    with pytest.raises(ValueError, match=r'shape \(C, H, W\)'):
        estimate_band_statistics([torch.zeros(2, 2)])
    stats = BandStatistics()
    stats.update(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match='sample 1 has 3 bands, the previous ones 2'):
        stats.update(torch.ones(3, 2, 2))
