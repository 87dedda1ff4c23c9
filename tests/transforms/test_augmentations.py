import pytest
import torch

from torchgeo_decur.transforms import PRESETS, ModalityAugmentation, resolve_config


@pytest.mark.parametrize('preset', sorted(PRESETS))
@pytest.mark.parametrize('channels', [1, 2, 3, 13])
def test_presets_run_for_any_channel_count(preset: str, channels: int) -> None:
    aug = ModalityAugmentation(resolve_config(preset), size=16, in_channels=channels)
    x = torch.rand(4, channels, 24, 20)
    y = aug(x)
    assert y.shape == (4, channels, 16, 16)
    # Kornia's blur/resampling can overshoot by float rounding (~2e-7).
    assert y.min() >= -1e-6
    assert y.max() <= 1 + 1e-6


def test_presets_follow_reference_scripts() -> None:
    assert PRESETS['sar'].scale == (0.2, 1.0)
    assert PRESETS['sar'].brightness == 0
    assert PRESETS['sar'].grayscale_p == 0.2
    assert PRESETS['sar'].blur_p == 0.5
    assert PRESETS['optical'].solarize_p == 0.2
    assert PRESETS['optical'].jitter_p == 0.8
    assert PRESETS['elevation'].blur_p == 0
    assert PRESETS['elevation'].grayscale_p == 0
    assert PRESETS['rgb'].scale == (0.5, 1.0)
    assert not PRESETS['rgb'].vflip
    assert PRESETS['depth'].scale == (0.5, 1.0)
    assert not PRESETS['depth'].vflip


def test_two_calls_give_different_views() -> None:
    torch.manual_seed(0)
    aug = ModalityAugmentation(resolve_config('optical'), size=16, in_channels=13)
    x = torch.rand(8, 13, 32, 32)
    assert not torch.allclose(aug(x), aug(x))


def test_overrides_and_errors() -> None:
    cfg = resolve_config({'preset': 'optical', 'scale': [0.5, 1.0], 'vflip': False})
    assert cfg.scale == (0.5, 1.0)
    assert not cfg.vflip
    assert cfg.solarize_p == 0.2
    with pytest.raises(ValueError, match='unknown augmentation preset'):
        resolve_config('thermal')
    with pytest.raises(ValueError, match=r"unknown augmentation option\(s\) \['hue'\]"):
        resolve_config({'preset': 'sar', 'hue': 0.1})
    with pytest.raises(ValueError, match='grayscale_weights has 3 entries'):
        ModalityAugmentation(
            resolve_config({'preset': 'sar', 'grayscale_weights': [1, 1, 1]}), 8, 2
        )
    aug = ModalityAugmentation(resolve_config('sar'), 8, 2)
    with pytest.raises(ValueError, match=r'expected a batch \(N, 2, H, W\)'):
        aug(torch.rand(2, 3, 8, 8))


def test_elevation_preset_only_crops_and_flips() -> None:
    # Without photometric ops, a constant image stays constant.
    aug = ModalityAugmentation(resolve_config('elevation'), size=8, in_channels=3)
    y = aug(torch.full((2, 3, 16, 16), 0.3))
    assert torch.allclose(y, torch.full_like(y, 0.3))
