import pytest
import torch

from torchgeo_decur.transforms import ModalityAugmentation, resolve_config

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def standardise(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def test_photometric_part_runs_on_unstandardised_values() -> None:
    # The reference jitters/grays/blurs the [0, 1] image and normalises afterwards;
    # given a standardised batch, the pipeline must give exactly that.
    spec = {'preset': 'rgb', 'mean': MEAN, 'std': STD, 'jitter_p': 1.0}
    std = ModalityAugmentation(resolve_config(spec), size=16, in_channels=3)
    plain = ModalityAugmentation(
        resolve_config({'preset': 'rgb', 'jitter_p': 1.0}), size=16, in_channels=3
    )
    x = torch.rand(6, 3, 16, 16)
    torch.manual_seed(1)
    reference = standardise(plain.photometric(x))
    torch.manual_seed(1)
    ours = std.photometric(standardise(x))
    assert torch.allclose(ours, reference, atol=1e-5)
    # Clamping to [0, 1] happened in [0, 1] units, not on the standardised values.
    assert ours.min() < 0


def test_geometric_only_presets_ignore_standardisation() -> None:
    cfg = resolve_config({'preset': 'depth', 'mean': MEAN, 'std': STD})
    assert cfg.mean == tuple(MEAN)
    aug = ModalityAugmentation(cfg, size=8, in_channels=3)
    assert len(aug.photometric) == 0
    y = aug(torch.full((2, 3, 16, 16), -1.5))
    assert torch.allclose(y, torch.full_like(y, -1.5))


@pytest.mark.parametrize(
    ('options', 'message'),
    [
        ({'mean': MEAN}, 'mean and std must be given together'),
        ({'std': STD}, 'mean and std must be given together'),
        (
            {'mean': MEAN[:2], 'std': STD[:2]},
            r'mean/std have 2/2 entries .* 3 channels',
        ),
        ({'mean': MEAN, 'std': [0.2, 0.0, 0.2]}, 'std must be positive'),
    ],
)
def test_invalid_standardisation(options: dict[str, list[float]], message: str) -> None:
    for preset in ('rgb', 'depth'):
        with pytest.raises(ValueError, match=message):
            ModalityAugmentation(resolve_config({'preset': preset, **options}), 8, 3)
