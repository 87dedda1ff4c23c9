import math

import pytest
import torch

from torchgeo_decur.models import build_backbone, feature_dim


def build(model: str, in_chans: int, fresh_stem: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(model, in_chans, fresh_stem=fresh_stem)


@pytest.mark.parametrize(
    ('model', 'stem'),
    [('resnet18', 'conv1'), ('vit_tiny_patch16_224', 'patch_embed.proj')],
)
def test_fresh_stem_reinitialises_only_a_non_rgb_stem(model: str, stem: str) -> None:
    kept = build(model, 13, fresh_stem=False).state_dict()
    fresh = build(model, 13, fresh_stem=True)
    weight = fresh.get_submodule(stem).weight
    # Redrawn with PyTorch's default Conv2d init: uniform within 1/sqrt(fan_in).
    assert not torch.equal(weight, kept[f'{stem}.weight'])
    assert weight.abs().max() <= 1 / math.sqrt(weight[0].numel())
    # Everything else is what the plain build gives.
    for key, value in fresh.state_dict().items():
        if not key.startswith(stem):
            assert torch.equal(value, kept[key]), key
    # A 3-channel stem is kept, as the reference kept its RGB stems.
    rgb = build(model, 3, fresh_stem=True).state_dict()
    assert torch.equal(
        rgb[f'{stem}.weight'], build(model, 3, False).state_dict()[f'{stem}.weight']
    )


def test_fresh_stem_needs_a_named_first_convolution() -> None:
    with pytest.raises(ValueError, match="names no 'first_conv'"):
        build_backbone('mit_b2', 4, fresh_stem=True)


def test_bad_backbone_arguments() -> None:
    with pytest.raises(ValueError, match='in_chans must be positive'):
        build_backbone('resnet18', 0)
    with pytest.raises(ValueError, match='not a timm model name'):
        build_backbone('resnet5000', 3)
    assert feature_dim(build_backbone('resnet18', 2)) == 512


def test_decur_task_passes_fresh_stem_through_backbone_kwargs() -> None:
    from torchgeo_decur import DeCURTask

    def task(**kwargs: object) -> DeCURTask:
        torch.manual_seed(0)
        return DeCURTask(
            model='resnet18', projector_dims=[16, 16], common_dim=8, **kwargs
        )

    plain = task().backbones['s1'].state_dict()
    fresh = task(backbone_kwargs={'fresh_stem': True}).backbones['s1'].state_dict()
    assert not torch.equal(fresh['conv1.weight'], plain['conv1.weight'])
    assert all(torch.equal(fresh[k], plain[k]) for k in plain if k != 'conv1.weight')
