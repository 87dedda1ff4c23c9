"""Key remapping of single-encoder files and the inverse (export) layouts."""

import pytest
import torch
from torch import Tensor, nn

from torchgeo_decur.checkpoints import (
    load_encoder_state,
    load_exact,
    remap_backbone_state_dict,
    select_encoder_state_dict,
)
from torchgeo_decur.checkpoints.layouts import (
    split_joint_state_dict,
    to_reference_backbone,
    to_reference_joint,
)
from torchgeo_decur.models.shapes import infer_in_chans


def t(value: float) -> Tensor:
    return torch.full((1,), value)


def test_plain_files_pass_through() -> None:
    state = {'conv1.weight': t(1), 'layer1.0.bn1.weight': t(2)}
    assert remap_backbone_state_dict(state) == state


def test_ddp_prefix_is_stripped() -> None:
    state = {'module.conv1.weight': t(1), 'module.fc.bias': t(2)}
    assert remap_backbone_state_dict(state) == {'conv1.weight': t(1), 'fc.bias': t(2)}


@pytest.mark.parametrize('block', [1, 2])
def test_released_rda_backbone_layout(block: int) -> None:
    state = {
        'backbone.conv1.weight': t(1),
        'backbone.layer4.2.bn3.running_var': t(2),
        f'da{block}_l3.rpe_table': t(3),
        f'da{block}_l4.conv_offset.1.norm.weight': t(4),
    }
    out = remap_backbone_state_dict(state, 'rda.pth')
    assert out == {
        'conv1.weight': t(1),
        'layer4.2.bn3.running_var': t(2),
        'da_l3.rpe_table': t(3),
        'da_l4.conv_offset.1.norm.weight': t(4),
    }
    # Idempotent: our own names are left alone.
    assert remap_backbone_state_dict(out) == out


def test_ambiguous_single_files_are_errors() -> None:
    with pytest.raises(ValueError, match='both da1_\\* and da2_\\*'):
        remap_backbone_state_dict({'da1_l3.a': t(1), 'da2_l3.a': t(1)}, 'f')
    with pytest.raises(ValueError, match='clash after remapping'):
        remap_backbone_state_dict({'backbone.conv1.weight': t(1), 'conv1.weight': t(2)})
    with pytest.raises(ValueError, match='holds both encoders'):
        remap_backbone_state_dict({'module.backbone_1.a': t(1)}, 'joint.pth')


def test_select_encoder_from_each_layout() -> None:
    joint = {
        'module.backbone_1.conv1.weight': t(1),
        'module.backbone_2.conv1.weight': t(2),
        'module.projector1.0.weight': t(3),
        'module.bn.running_mean': t(0),
    }
    assert select_encoder_state_dict(joint, 'j') == {'conv1.weight': t(1)}
    assert select_encoder_state_dict(joint, 'j', 2) == {'conv1.weight': t(2)}
    with pytest.raises(ValueError, match="modality='s2' names none"):
        select_encoder_state_dict(joint, 'j', 's2')
    task = {'backbones.rgb.conv1.weight': t(4), 'backbones.dem.conv1.weight': t(5)}
    assert select_encoder_state_dict(task, 'c', 'dem') == {'conv1.weight': t(5)}
    assert select_encoder_state_dict(task, 'c', 1) == {'conv1.weight': t(4)}
    single = {'backbone.conv1.weight': t(6), 'da2_l3.rpe_table': t(7)}
    assert select_encoder_state_dict(single, 's') == {
        'conv1.weight': t(6),
        'da_l3.rpe_table': t(7),
    }
    with pytest.raises(ValueError, match='holds a single encoder'):
        select_encoder_state_dict(single, 's', 2)


def test_in_chans_from_each_stem() -> None:
    assert infer_in_chans({'conv1.weight': torch.zeros(64, 13, 7, 7)}, 'f') == 13
    stem = {'patch_embed.proj.weight': torch.zeros(384, 2, 16, 16)}
    assert infer_in_chans(stem, 'f') == 2
    assert (
        infer_in_chans({'patch_embed1.proj.weight': torch.zeros(64, 3, 7, 7)}, 'f') == 3
    )
    with pytest.raises(ValueError, match='cannot tell the input channels of f'):
        infer_in_chans({'x': torch.zeros(1)}, 'f')


def test_export_layouts_invert_the_readers() -> None:
    rgb = {'conv1.weight': t(1), 'da_l3.rpe_table': t(2), 'da_l4.proj_q.bias': t(3)}
    dem = {'conv1.weight': t(4), 'da_l3.rpe_table': t(5), 'da_l4.proj_q.bias': t(6)}
    projectors = {'rgb': {'0.weight': t(7)}, 'dem': {'0.weight': t(8)}}
    joint = to_reference_joint({'rgb': rgb, 'dem': dem}, projectors)
    assert joint['module.da2_l3.rpe_table'] == 5
    assert joint['module.backbone_2.conv1.weight'] == 4
    backbones, proj = split_joint_state_dict(joint, ('rgb', 'dem'), 'j')
    assert backbones == {'rgb': rgb, 'dem': dem}
    assert proj == projectors
    single = to_reference_backbone(dem, 2)
    assert set(single) == {
        'backbone.conv1.weight',
        'da2_l3.rpe_table',
        'da2_l4.proj_q.bias',
    }
    assert remap_backbone_state_dict(single) == dem
    mit = to_reference_backbone({'norm4.weight': t(1), 'head.weight': t(2)}, 1)
    assert mit == {'norm4.weight': t(1)}


def test_load_exact_keeps_ignored_keys_the_module_has() -> None:
    model = nn.Sequential()
    model.add_module('body', nn.Linear(2, 2))
    model.add_module('head', nn.Linear(2, 3))
    state = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    load_exact(model, state, 'm', ignore_unexpected=('head.',))
    assert torch.equal(model.head.weight, torch.ones(3, 2))


def test_load_encoder_state_replaces_only_a_different_head() -> None:
    model = nn.Sequential()
    model.add_module('body', nn.Linear(2, 2))
    model.add_module('head', nn.Linear(2, 3))
    before = model.head.weight.clone()
    state = {
        'body.weight': torch.ones(2, 2),
        'body.bias': torch.ones(2),
        'head.weight': torch.ones(5, 2),
        'head.bias': torch.ones(5),
    }
    load_encoder_state(model, state, 'm')
    assert torch.equal(model.body.weight, torch.ones(2, 2))
    assert torch.equal(model.head.weight, before)
    with pytest.raises(ValueError, match=r'missing keys: body\.bias'):
        load_encoder_state(model, {'body.weight': torch.ones(2, 2)}, 'm')


def test_rda_semantics_of_backbone_files() -> None:
    plain = {'conv1.weight': t(0)}
    sar = {'backbone.conv1.weight': t(1), 'da1_l3.rpe_table': t(2)}
    ms = {'backbone.conv1.weight': t(1), 'da2_l3.rpe_table': t(3)}
    joint = {'backbone_1.conv1.weight': t(1), 'backbone_2.conv1.weight': t(2)}
    # da1 blocks are what both modalities used in pretraining: both semantics.
    for semantics in ('transfer', 'pretraining'):
        assert select_encoder_state_dict(sar, 'sar.pth', rda_semantics=semantics) == {
            'conv1.weight': t(1),
            'da_l3.rpe_table': t(2),
        }
        assert remap_backbone_state_dict(plain, 'p', semantics) == plain
    assert select_encoder_state_dict(ms, 'ms.pth')['da_l3.rpe_table'] == 3
    # Modality 2's own blocks cannot stand in for the pretraining-time da1 blocks.
    with pytest.raises(
        ValueError, match=r"ms.pth holds modality 2's own da2_\*.*joint"
    ):
        select_encoder_state_dict(ms, 'ms.pth', rda_semantics='pretraining')
    with pytest.raises(ValueError, match=r'da2_\*.*Load the joint file'):
        remap_backbone_state_dict(ms, 'ms.pth', 'pretraining')
    # An invalid value is an error for every layout, not only joint files.
    for state in (plain, sar, ms, joint):
        with pytest.raises(
            ValueError, match="must be 'transfer' or 'pretraining', got 'bogus'"
        ):
            select_encoder_state_dict(state, 'f', rda_semantics='bogus')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="got 'bogus'"):
        remap_backbone_state_dict(plain, 'p', 'bogus')  # type: ignore[arg-type]


def test_export_writes_the_reference_bn_buffers() -> None:
    rgb = {'conv1.weight': t(1)}
    projector = {
        '0.weight': torch.zeros(16, 8),
        '1.running_mean': torch.zeros(16),
        '3.weight': torch.zeros(12, 16),
    }
    joint = to_reference_joint({'a': rgb, 'b': rgb}, {'a': projector, 'b': projector})
    assert torch.equal(joint['module.bn.running_mean'], torch.zeros(12))
    assert torch.equal(joint['module.bn.running_var'], torch.ones(12))
    assert joint['module.bn.num_batches_tracked'].dtype == torch.int64
    assert joint['module.bn.num_batches_tracked'] == 0
    other = projector | {'3.weight': torch.zeros(10, 16)}
    with pytest.raises(
        ValueError, match=r"different output sizes \{'a': 12, 'b': 10\}"
    ):
        to_reference_joint({'a': rgb, 'b': rgb}, {'a': projector, 'b': other})
    # No projectors, no embedding size: no bn buffers.
    assert not any('.bn.' in k for k in to_reference_joint({'a': rgb}, {}))
