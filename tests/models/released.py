"""Build small stand-ins of the released DeCUR files (random weights, real layouts).

The key names, shapes and wrappers follow the released files; only the values are random.
Projector matrices of the real 8192-d shape are stored as stride-0 expansions of one
value, so a joint file stays a few MB while every key has its released shape.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
import torchvision
from torch import Tensor, nn

from torchgeo_decur.models import Projector
from torchgeo_decur.weights import DeCURWeightsEnum

#: The 24 released file names, copied from the upstream README table (an
#: independent source for the members' URLs).
README_FILES = (
    'rn50_ssl4eo-s12_joint_decur_ep100.pth',
    'rn50_ssl4eo-s12_sar_decur_ep100.pth',
    'rn50_ssl4eo-s12_ms_decur_ep100.pth',
    'rn50_rda_ssl4eo-s12_joint_decur_ep100.pth',
    'rn50_rda_ssl4eo-s12_sar_decur_ep100.pth',
    'rn50_rda_ssl4eo-s12_ms_decur_ep100.pth',
    'vits16_ssl4eo-s12_joint_decur_ep100.pth',
    'vits16_ssl4eo-s12_sar_decur_ep100.pth',
    'vits16_ssl4eo-s12_ms_decur_ep100.pth',
    'rn50_geonrw_joint_decur_ep100.pth',
    'rn50_geonrw_rgb_decur_ep100.pth',
    'rn50_geonrw_dem_decur_ep100.pth',
    'rn50_rda_geonrw_joint_decur_ep100.pth',
    'rn50_rda_geonrw_rgb_decur_ep100.pth',
    'rn50_rda_geonrw_dem_decur_ep100.pth',
    'vits16_geonrw_joint_decur_ep100.pth',
    'vits16_geonrw_rgb_decur_ep100.pth',
    'vits16_geonrw_dem_decur_ep100.pth',
    'mitb2_sunrgbd_rgb_hha_decur_ep200.pth',
    'mitb2_sunrgbd_backbone_rgb_decur_ep200.pth',
    'mitb2_sunrgbd_backbone_hha_decur_ep200.pth',
    'mitb5_sunrgbd_rgb_hha_decur_ep200.pth',
    'mitb5_sunrgbd_backbone_rgb_decur_ep200.pth',
    'mitb5_sunrgbd_backbone_hha_decur_ep200.pth',
)

#: Output size of each architecture's encoder inside DeCUR (MiT: its head).
FEATURES = {
    'resnet50': 2048,
    'resnet50_rda': 2048,
    'vit_small_patch16_224': 384,
    'mit_b2': 2048,
    'mit_b5': 2048,
}

#: Side length of test inputs; ViT-S/16 runs at 32 px with ``dynamic_img_size``
#: (its 224-px position embedding is interpolated; keys and shapes stay the same).
SIZE = 32

#: Models that need larger inputs: RDA's layer4 attention needs a 2 x 2 map.
SIZES = {'resnet50_rda': 48}

#: Extra ``timm.create_model`` arguments for small inputs.
SMALL_INPUT_KWARGS: dict[str, dict[str, Any]] = {
    'vit_small_patch16_224': {'dynamic_img_size': True}
}


def randomize_statistics(module: nn.Module, seed: int) -> None:
    """Give norm layers non-trivial affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith('running_var'):
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
            elif name.endswith('running_mean'):
                tensor.copy_(torch.randn(tensor.shape, generator=g) * 0.1)
            elif tensor.ndim == 1 and ('bn' in name or 'norm' in name):
                noise = torch.randn(tensor.shape, generator=g) * 0.1
                tensor.add_(noise)


def reference_encoder(
    model: str, in_chans: int, seed: int, head: bool = False
) -> nn.Module:
    """The encoder the reference code trained, with random weights.

    ResNet-50 is torchvision's with a fresh C-channel stem and ``fc = Identity``
    (as the reference builds it); ViT-S/16 is timm's without head; MiT is smp's
    encoder (key- and output-identical to SegFormer's), with DeCUR's
    2048-d head when ``head``; ResNet-50-RDA is this package's timm model.
    """
    torch.manual_seed(seed)
    encoder: nn.Module
    if model == 'resnet50':
        encoder = torchvision.models.resnet50()
        encoder.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        encoder.fc = nn.Identity()
    else:
        encoder = timm.create_model(
            model,
            in_chans=in_chans,
            num_classes=2048 if head else 0,
            **SMALL_INPUT_KWARGS.get(model, {}),
        )
    randomize_statistics(encoder, seed)
    return encoder.eval()


def projector_state(input_dim: int, dims: tuple[int, ...]) -> dict[str, Tensor]:
    """A DeCUR projector's state; released 8192-d shapes as stride-0 tensors."""
    if max(dims) <= 256:
        torch.manual_seed(input_dim)
        return dict(Projector(input_dim, dims).state_dict())
    shapes = Projector(4, (2,) * len(dims)).state_dict()
    sizes = (input_dim, *dims)
    out: dict[str, Tensor] = {}
    for key, value in shapes.items():
        index = int(key.split('.')[0]) // 3  # Linear i sits at 3i, its BN at 3i + 1
        if key.endswith('num_batches_tracked'):
            out[key] = torch.tensor(100)
        elif value.ndim == 2:
            out[key] = torch.full((1,), 0.01).expand(sizes[index + 1], sizes[index])
        else:
            out[key] = torch.full((1,), 1.0).expand(sizes[index + 1])
    return out


def joint_layout(
    encoders: list[nn.Module],
    projector: Mapping[str, Tensor],
    prefix: str = 'module.',
) -> dict[str, Tensor]:
    """The reference ``DeCUR`` model's state dict."""
    out: dict[str, Tensor] = {}
    for i, encoder in enumerate(encoders, start=1):
        for key, value in encoder.state_dict().items():
            if key.startswith(('da_l3.', 'da_l4.')):
                out[f'{prefix}da{i}_{key[3:]}'] = value
            else:
                out[f'{prefix}backbone_{i}.{key}'] = value
        # projector1 and projector2 are the same parameters in the reference.
        out |= {f'{prefix}projector{i}.{k}': v for k, v in projector.items()}
    last = max((k for k in projector if k.endswith('.weight')), key=lambda k: int(k[0]))
    width = projector[last].shape[0]
    out[f'{prefix}bn.running_mean'] = torch.zeros(1).expand(width)
    out[f'{prefix}bn.running_var'] = torch.ones(1).expand(width)
    out[f'{prefix}bn.num_batches_tracked'] = torch.tensor(100)
    return out


def backbone_layout(encoder: nn.Module, position: int) -> dict[str, Tensor]:
    """A released backbone-only file (``convert_backbone.py`` / CMX converter)."""
    state = encoder.state_dict()
    rda = any(k.startswith('da_l3.') for k in state)
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith('head.'):
            continue
        if key.startswith(('da_l3.', 'da_l4.')):
            out[f'da{position}_{key[3:]}'] = value
        else:
            out[f'backbone.{key}' if rda else key] = value
    return out


#: How each joint file is wrapped in the tests: the plain RN50 / GeoNRW wrappers
#: are unknown (both are accepted), MiT files are ``{'model': ...}`` dicts.
WRAPPED = {'resnet50', 'mit_b2', 'mit_b5'}


def second_encoder_state(
    state: Mapping[str, Tensor], reference: nn.Module, seed: int
) -> dict[str, Tensor]:
    """Weights for modality 2 derived cheaply from modality 1's.

    Every 1-D tensor (norm parameters and statistics, biases), the stem and any
    head are new random values; the large matrices are shared with modality 1, so
    a joint file stores them once. The two encoders still compute clearly
    different features, which is what the tests need to tell them apart.
    """
    g = torch.Generator().manual_seed(seed)
    own = reference.state_dict()
    out: dict[str, Tensor] = {}
    for key, value in own.items():
        if key in state and state[key].shape == value.shape and value.ndim > 1:
            fresh = key.startswith(('head.', 'conv1.', 'patch_embed'))
            out[key] = value.clone() if fresh else state[key]
            if fresh:
                out[key].normal_(0.0, float(state[key].std()), generator=g)
        elif value.is_floating_point():
            noise = torch.randn(value.shape, generator=g) * 0.1
            out[key] = (
                (value + noise).abs() if key.endswith('running_var') else value + noise
            )
        else:
            out[key] = value
    return out


def reference_pair(joint: DeCURWeightsEnum) -> list[nn.Module]:
    """Random reference encoders for both modalities of a joint member."""
    model = joint.meta['model']
    seed = len(joint.meta['file'])
    head = model.startswith('mit_')
    first = reference_encoder(model, joint.in_chans_for(1), seed, head)
    second = reference_encoder(model, joint.in_chans_for(2), seed + 1, head)
    # assign=True keeps the shared matrices shared, so the file stores them once.
    second.load_state_dict(
        second_encoder_state(first.state_dict(), second, seed), assign=True
    )
    return [first, second]


def write_joint(
    member: DeCURWeightsEnum,
    directory: Path,
    encoders: list[nn.Module],
    projector_dims: tuple[int, ...] = (8192, 8192, 8192),
) -> Path:
    """Write a stand-in of a joint member's file where torch.hub looks for it."""
    model = member.meta['model']
    state = joint_layout(encoders, projector_state(FEATURES[model], projector_dims))
    obj: Any = (
        {'epoch': 100, 'model': state, 'optimizer': {'state': {}}}
        if model in WRAPPED
        else state
    )
    path = directory / os.path.basename(member.url)
    assert path.name == member.meta['file']
    torch.save(obj, path)
    return path


def write_backbone(
    member: DeCURWeightsEnum, directory: Path, encoder: nn.Module, position: int
) -> Path:
    """Write a backbone-only member's file, converted from a joint encoder.

    Like the reference ``convert_backbone.py``, which made the released backbone
    files from the joint checkpoints (position: 1 for SAR/RGB, 2 for MS/DEM/HHA).
    """
    path = directory / os.path.basename(member.url)
    assert path.name == member.meta['file']
    torch.save(backbone_layout(encoder, position), path)
    return path


def write_group(
    members: list[DeCURWeightsEnum], directory: Path
) -> list[tuple[DeCURWeightsEnum, int, nn.Module]]:
    """Write the three files of one architecture and dataset.

    Args:
        members: The joint member, then the backbone-only members.
        directory: The torch.hub checkpoint directory.

    Returns:
        ``(member, position in its file, reference encoder)`` for every encoder
        the files hold.
    """
    joint, *singles = members
    encoders = reference_pair(joint)
    write_joint(joint, directory, encoders)
    cases = [(joint, 1, encoders[0]), (joint, 2, encoders[1])]
    for single in singles:
        position = joint.position(single.modalities[0])
        write_backbone(single, directory, encoders[position - 1], position)
        cases.append((single, 1, encoders[position - 1]))
    return cases


def assert_features_match(ours: Tensor, reference: Tensor) -> None:
    """Features agree to 1e-4 relative (Frobenius) error."""
    assert ours.shape == reference.shape
    error = (ours - reference).norm() / reference.norm()
    assert error < 1e-4, f'relative error {error:.2e}'
