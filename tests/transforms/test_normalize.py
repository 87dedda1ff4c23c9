import numpy as np
import pytest
import torch

from torchgeo_decur.transforms import (
    SSL4EO_S12_S1_BANDS,
    SSL4EO_S12_S1_MEAN,
    SSL4EO_S12_S1_STD,
    SSL4EO_S12_S2_BANDS,
    SSL4EO_S12_S2_MEAN,
    SSL4EO_S12_S2_STD,
    ApplyToKeys,
    ClipNormalize,
    PercentileClip,
)


def test_clip_normalize_window() -> None:
    t = ClipNormalize([10.0], [2.0])
    x = torch.tensor([[[6.0, 8.0, 10.0, 14.0, 20.0]]])  # window [6, 14]
    assert torch.allclose(t(x), torch.tensor([[[0.0, 0.25, 0.5, 1.0, 1.0]]]))


def test_clip_normalize_matches_reference_uint8_scaling() -> None:
    # The reference stores trunc(clip((x - (mu - 2 sigma)) / (4 sigma) * 255, 0, 255)).
    rng = np.random.default_rng(0)
    x = rng.uniform(-40, 5, size=(2, 8, 8)).astype(np.float32)
    mu = np.array(SSL4EO_S12_S1_MEAN)[:, None, None]
    sigma = np.array(SSL4EO_S12_S1_STD)[:, None, None]
    u8 = np.clip((x - (mu - 2 * sigma)) / (4 * sigma) * 255, 0, 255).astype(np.uint8)
    ours = ClipNormalize(SSL4EO_S12_S1_MEAN, SSL4EO_S12_S1_STD, quantize=True)(
        torch.from_numpy(x)
    )
    assert np.allclose(ours.numpy(), u8 / 255.0, atol=1e-6)


def test_non_finite_values_are_mapped_not_propagated() -> None:
    t = ClipNormalize(SSL4EO_S12_S1_MEAN, SSL4EO_S12_S1_STD)
    x = torch.full((2, 2, 3, 3), -10.0)
    x[0, 0, 0, 0] = float('-inf')
    x[0, 1, 1, 1] = float('nan')
    x[1, 0, 2, 2] = float('inf')
    y = t(x)
    assert torch.isfinite(y).all()
    assert y[0, 0, 0, 0] == 0
    assert y[0, 1, 1, 1] == 0
    assert y[1, 0, 2, 2] == 1


def test_statistics_repeat_over_stacked_views() -> None:
    t = ClipNormalize([0.0, 100.0], [1.0, 10.0])
    x = torch.tensor([0.0, 100.0, 0.0, 100.0]).reshape(1, 4, 1, 1)
    assert torch.allclose(t(x).flatten(), torch.full((4,), 0.5))
    with pytest.raises(
        ValueError, match='3 channels, which is not a multiple of the 2 bands'
    ):
        t(torch.zeros(1, 3, 2, 2))


def test_clip_normalize_rejects_bad_statistics() -> None:
    with pytest.raises(ValueError, match='equally long'):
        ClipNormalize([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match='positive'):
        ClipNormalize([0.0], [0.0])


@pytest.mark.parametrize('per_channel', [True, False])
def test_percentile_clip_matches_numpy(per_channel: bool) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 10, 10)).astype(np.float32)
    ours = PercentileClip(1, 99, per_channel=per_channel)(torch.from_numpy(x)).numpy()
    for i in range(3):
        if per_channel:
            for c in range(2):
                lo, hi = np.percentile(x[i, c], [1, 99])
                assert np.allclose(ours[i, c], np.clip(x[i, c], lo, hi), atol=1e-6)
        else:
            lo, hi = np.percentile(x[i], [1, 99])
            assert np.allclose(ours[i], np.clip(x[i], lo, hi), atol=1e-6)


def test_percentile_clip_rescale_and_non_finite() -> None:
    x = torch.arange(100, dtype=torch.float32).reshape(1, 10, 10)
    x[0, 0, 0] = float('nan')
    x[0, 0, 1] = float('-inf')
    y = PercentileClip(0, 100, rescale=True)(x)
    assert torch.isfinite(y).all()
    assert y.min() == 0
    assert y.max() == 1
    with pytest.raises(ValueError, match='low < high'):
        PercentileClip(50, 10)
    with pytest.raises(ValueError, match=r'\(C, H, W\)'):
        PercentileClip()(torch.zeros(4, 4))


def test_apply_to_keys() -> None:
    t = ApplyToKeys({'image_a': lambda x: x + 1})
    out = t({'image_a': torch.zeros(1), 'label': torch.ones(1)})
    assert out['image_a'] == 1
    assert out['label'] == 1
    with pytest.raises(ValueError, match="no key\\(s\\) \\['image_a'\\]"):
        t({'image_b': torch.zeros(1)})


def test_ssl4eo_s12_constants_are_the_published_ones() -> None:
    # Literal values of the DeCUR pretraining code (S1, VV/VH; S2 L1C, 13 bands).
    assert SSL4EO_S12_S1_BANDS == ('VV', 'VH')
    assert SSL4EO_S12_S1_MEAN == (-12.54847273, -20.19237134)
    assert SSL4EO_S12_S1_STD == (5.25697717, 5.91150917)
    assert SSL4EO_S12_S2_BANDS == (
        'B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B8A', 'B9', 'B10', 'B11', 'B12'
    )  # fmt: skip
    assert SSL4EO_S12_S2_MEAN == (
        1605.57504906, 1390.78157673, 1314.8729939, 1363.52445545, 1549.44374991,
        2091.74883118, 2371.7172463, 2299.90463006, 2560.29504086, 830.06605044,
        22.10351321, 2177.07172323, 1524.06546312,
    )  # fmt: skip
    assert SSL4EO_S12_S2_STD == (
        786.78685367, 850.34818441, 875.06484736, 1138.84957046, 1122.17775652,
        1161.59187054, 1274.39184232, 1248.42891965, 1345.52684884, 577.31607053,
        51.15431158, 1336.09932639, 1136.53823676,
    )  # fmt: skip
    # The clip windows (mu - 2 sigma, mu + 2 sigma), S1 in dB.
    lo = [m - 2 * s for m, s in zip(SSL4EO_S12_S1_MEAN, SSL4EO_S12_S1_STD, strict=True)]
    assert lo == pytest.approx([-23.0624, -32.0154], abs=1e-4)
