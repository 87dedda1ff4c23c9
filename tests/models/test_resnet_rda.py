"""ResNet-50-RDA: the timm-facing contract other modules rely on."""

import copy
from typing import Any

import pytest
import timm
import torch
from torch import Tensor, nn

from torchgeo_decur.checkpoints import load_exact
from torchgeo_decur.models import (
    DeformableAttention,
    ResNetRDA,
    share_deformable_attention,
)

# Names of one block's parameters in the released checkpoints.
DA_KEYS = [
    'rpe_table',
    'conv_offset.0.weight',
    'conv_offset.0.bias',
    'conv_offset.1.norm.weight',
    'conv_offset.1.norm.bias',
    'conv_offset.3.weight',
    'proj_q.weight',
    'proj_q.bias',
    'proj_k.weight',
    'proj_k.bias',
    'proj_v.weight',
    'proj_v.bias',
    'proj_out.weight',
    'proj_out.bias',
]

# 48 px is the smallest input whose layer4 map is 2 x 2 (keeps the CPU tests fast).
SIZE = 48


@pytest.fixture(scope='module')
def model() -> ResNetRDA:
    torch.manual_seed(0)
    m = timm.create_model('resnet50_rda', in_chans=2, num_classes=0).eval()
    assert isinstance(m, ResNetRDA)
    return m


def manual_stages(m: ResNetRDA, x: Tensor) -> list[Tensor]:
    """layer2, layer3 + DA, layer4 + DA written out as in the reference forward."""
    assert m.da_l3 is not None
    assert m.da_l4 is not None
    x = m.maxpool(m.act1(m.bn1(m.conv1(x))))
    f2 = m.layer2(m.layer1(x))
    x = m.layer3(f2)
    f3 = x + m.da_l3(x)
    x = m.layer4(f3)
    f4 = x + m.da_l4(x)
    return [f2, f3, f4]


def test_state_dict_is_resnet50_plus_two_blocks(model: ResNetRDA) -> None:
    plain = timm.create_model('resnet50', in_chans=2, num_classes=0).state_dict()
    own = model.state_dict()
    expected = (
        list(plain) + [f'da_l3.{k}' for k in DA_KEYS] + [f'da_l4.{k}' for k in DA_KEYS]
    )
    assert sorted(own) == sorted(expected)
    assert len(plain) == 318  # torchvision's 320 minus fc
    for k, v in plain.items():
        assert own[k].shape == v.shape, k
    assert own['da_l3.rpe_table'].shape == (8, 27, 27)
    assert own['da_l4.rpe_table'].shape == (16, 13, 13)


def test_pooled_forward(model: ResNetRDA) -> None:
    x = torch.rand(2, 2, SIZE, SIZE + 16)
    with torch.no_grad():
        out = model(x)
        expected = manual_stages(model, x)[-1].mean(dim=(2, 3))
    assert out.shape == (2, 2048)
    torch.testing.assert_close(out, expected)
    assert model.num_features == 2048


def test_zero_output_projections_give_plain_resnet50(model: ResNetRDA) -> None:
    rda = copy.deepcopy(model)
    for block in (rda.da_l3, rda.da_l4):
        assert block is not None
        nn.init.zeros_(block.proj_out.weight)
        nn.init.zeros_(block.proj_out.bias)
    plain = timm.create_model('resnet50', in_chans=2, num_classes=0).eval()
    resnet_part = {k: v for k, v in rda.state_dict().items() if not k.startswith('da_')}
    load_exact(plain, resnet_part, what='resnet50')
    x = torch.rand(2, 2, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(rda(x), plain(x))


def test_features_only_through_timm(model: ResNetRDA) -> None:
    feats = timm.create_model(
        'resnet50_rda', features_only=True, out_indices=(2, 3, 4), in_chans=2
    ).eval()
    plain = timm.create_model(
        'resnet50', features_only=True, out_indices=(2, 3, 4), in_chans=2
    )
    assert feats.feature_info.channels() == plain.feature_info.channels()
    assert feats.feature_info.channels() == [512, 1024, 2048]
    assert feats.feature_info.reduction() == [8, 16, 32]
    # The wrapped encoder has the pooled model's key names (minus nothing).
    load_exact(feats.model, model.state_dict(), what='features_only encoder')
    x = torch.rand(1, 2, SIZE + 16, SIZE)
    with torch.no_grad():
        got = feats(x)
        expected = manual_stages(model, x)
        shapes = [tuple(f.shape) for f in plain(x)]
    assert [tuple(f.shape) for f in got] == shapes
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_features_only_prunes_unused_blocks() -> None:
    feats = timm.create_model('resnet50_rda', features_only=True, out_indices=(1, 2, 3))
    assert feats.model.da_l4 is None
    assert isinstance(feats.model.da_l3, DeformableAttention)
    assert not any(k.startswith('model.da_l4.') for k in feats.state_dict())
    out = feats(torch.rand(1, 3, SIZE, SIZE))
    assert [f.shape[1] for f in out] == [256, 512, 1024]


def test_forward_intermediates_default_and_stop_early(model: ResNetRDA) -> None:
    x = torch.rand(1, 2, SIZE, SIZE)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        early = model.forward_intermediates(
            x, indices=[2], stop_early=True, intermediates_only=True
        )
        expected = manual_stages(model, x)
    assert [f.shape[1] for f in inter] == [64, 256, 512, 1024, 2048]
    torch.testing.assert_close(final, expected[-1])
    torch.testing.assert_close(inter[3], expected[1])
    torch.testing.assert_close(early[0], expected[0])
    with pytest.raises(ValueError, match='NCHW'):
        model.forward_intermediates(x, output_fmt='NHWC')


def test_gradient_checkpointing_same_result() -> None:
    torch.manual_seed(1)
    m = timm.create_model('resnet50_rda', num_classes=0).eval()
    x = torch.rand(1, 3, SIZE, SIZE)
    ref = m(x)
    ref.square().sum().backward()
    grads = {k: p.grad.clone() for k, p in m.named_parameters() if 'da_' in k}
    m.zero_grad()
    m.set_grad_checkpointing(True)
    out = m(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, ref)
    for k, g in grads.items():
        torch.testing.assert_close(m.get_parameter(k).grad, g)


def test_imagenet_weights_fill_resnet_part_only() -> None:
    torch.manual_seed(2)
    source = timm.create_model('resnet50').state_dict()  # stands in for ImageNet
    torch.manual_seed(3)
    m = timm.create_model(
        'resnet50_rda',
        pretrained=True,
        in_chans=3,
        num_classes=1000,  # keeps timm's loading strict
        pretrained_cfg_overlay={'state_dict': source},
    )
    own = m.state_dict()
    for k, v in source.items():
        assert torch.equal(own[k], v), k
    # The attention blocks keep their fresh initialisation.
    assert torch.equal(own['da_l3.conv_offset.1.norm.weight'], torch.ones(256))
    assert 0.005 < own['da_l4.rpe_table'].std() < 0.02


def test_too_small_input_is_a_clear_error(model: ResNetRDA) -> None:
    with torch.no_grad():
        model(torch.rand(1, 2, 33, 33))  # layer4 is 2 x 2: fine
        with pytest.raises(ValueError, match='at least 2 x 2, got 1 x 1'):
            model(torch.rand(1, 2, 32, 32))


def test_only_getter_feature_class() -> None:
    with pytest.raises(ValueError, match='getter'):
        timm.create_model('resnet50_rda', features_only=True, feature_cls='hook')


def test_mismatched_block_width_is_an_error() -> None:
    from timm.models.resnet import BasicBlock

    with pytest.raises(ValueError, match='layer3 outputs 256'):
        ResNetRDA(block=BasicBlock, layers=(2, 2, 2, 2))


def released_backbone_layout(model: nn.Module, da: int) -> dict[str, Tensor]:
    """An RDA backbone file as released (rn50_rda_ssl4eo-s12_{sar,ms}), from our weights."""
    out: dict[str, Tensor] = {}
    for k, v in model.state_dict().items():
        if k.startswith('da_l3.'):
            out[f'da{da}_l3.{k[6:]}'] = v
        elif k.startswith('da_l4.'):
            out[f'da{da}_l4.{k[6:]}'] = v
        else:
            out[f'backbone.{k}'] = v
    return out


def rename(key: str, da: int) -> str:
    """The plain prefix rename the weights issue applies."""
    for old, new in (
        ('backbone.', ''),
        (f'da{da}_l3.', 'da_l3.'),
        (f'da{da}_l4.', 'da_l4.'),
    ):
        if key.startswith(old):
            return new + key[len(old) :]
    raise AssertionError(key)


@pytest.mark.parametrize('da', [1, 2])
def test_released_backbone_layout_maps_by_prefix_rename(
    model: ResNetRDA, da: int
) -> None:
    released = released_backbone_layout(model, da)
    assert len(released) == 318 + 28
    assert sum(k.startswith('backbone.') for k in released) == 318
    fresh = timm.create_model('resnet50_rda', in_chans=2, num_classes=0).eval()
    load_exact(fresh, {rename(k, da): v for k, v in released.items()}, what='rda')
    x = torch.rand(1, 2, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_share_blocks() -> None:
    a = timm.create_model('resnet50_rda', num_classes=0)
    b = timm.create_model('resnet50_rda', num_classes=0)
    share_deformable_attention(a, b)
    assert b.da_l3 is a.da_l3
    assert b.da_l4 is a.da_l4
    assert (
        b.state_dict()['da_l3.rpe_table'].data_ptr()
        == a.state_dict()['da_l3.rpe_table'].data_ptr()
    )
    plain: Any = timm.create_model('resnet18', num_classes=0)
    with pytest.raises(ValueError, match='no deformable-attention blocks'):
        share_deformable_attention(a, plain)
    with pytest.raises(ValueError, match='resnet50_rda'):
        share_deformable_attention(plain, a)
