from dataclasses import asdict

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


# Every field of every preset, written out from the DeCUR pretraining scripts (the reference
# pretraining transforms), so a changed default cannot slip through.
EXPECTED_PRESETS = {
    'sar': {'grayscale_p': 0.2, 'blur_p': 0.5},
    'optical': {
        'brightness': 0.4,
        'contrast': 0.4,
        'grayscale_p': 0.2,
        'blur_p': 0.5,
        'solarize_p': 0.2,
    },
    'elevation': {},
    'rgb': {
        'scale': (0.5, 1.0),
        'vflip': False,
        'brightness': 0.4,
        'contrast': 0.4,
        'grayscale_p': 0.2,
        'blur_p': 0.5,
    },
    'depth': {'scale': (0.5, 1.0), 'vflip': False},
}
# What every preset has unless listed above: crop 0.2-1 at 3/4-4/3, both flips,
# jitter (when on) with p 0.8, blur sigma 0.1-2, nothing else.
BASE = {
    'scale': (0.2, 1.0),
    'ratio': (3 / 4, 4 / 3),
    'hflip': True,
    'vflip': True,
    'brightness': 0.0,
    'contrast': 0.0,
    'jitter_p': 0.8,
    'grayscale_p': 0.0,
    'grayscale_weights': None,
    'blur_p': 0.0,
    'blur_sigma': (0.1, 2.0),
    'solarize_p': 0.0,
    'mean': None,
    'std': None,
}


@pytest.mark.parametrize('preset', sorted(EXPECTED_PRESETS))
def test_presets_follow_reference_scripts(preset: str) -> None:
    assert set(PRESETS) == set(EXPECTED_PRESETS)
    assert asdict(PRESETS[preset]) == BASE | EXPECTED_PRESETS[preset]


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
