"""MiT-B2/B5 inside DeCURTask and the released SUN RGB-D file layouts."""

import warnings
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
from torch import Tensor

from torchgeo_decur import DeCURTask, MultimodalClassificationTask
from torchgeo_decur.checkpoints import split_joint_state_dict
from torchgeo_decur.models import Projector

# Full-size MiT encoders are only filled with random weights here: skip the slow
# truncated-normal initialisation.
pytestmark = pytest.mark.usefixtures('fast_init')

#: A tiny projector with the released key names (13 keys, like 8192-8192-8192).
DIMS = (64, 64, 64)
TASK: dict[str, Any] = {
    'modalities': ('rgb', 'hha'),
    'model': 'mit_b2',
    'backbone_kwargs': {'num_classes': 2048},
    'projector_dims': DIMS,
    'common_dim': 48,
    'crop_size': 32,
}


def perturbed(state: dict[str, Tensor], delta: float) -> dict[str, Tensor]:
    """A second set of weights with the same layout (floats shifted)."""
    return {
        k: v + delta if v.is_floating_point() else v.clone() for k, v in state.items()
    }


def reference_joint(rgb: dict[str, Tensor], hha: dict[str, Tensor]) -> dict[str, Any]:
    """The released joint layout: a raw training checkpoint (mitb2_sunrgbd_rgb_hha_decur_ep200.pth)."""
    projector = Projector(2048, DIMS).state_dict()
    model: dict[str, Tensor] = {}
    for i, backbone in enumerate((rgb, hha), start=1):
        model |= {f'module.backbone_{i}.{k}': v for k, v in backbone.items()}
    for i in (1, 2):  # the reference's two projectors share their tensors
        model |= {f'module.projector{i}.{k}': v for k, v in projector.items()}
    model |= {
        'module.bn.running_mean': torch.zeros(DIMS[-1]),
        'module.bn.running_var': torch.ones(DIMS[-1]),
        'module.bn.num_batches_tracked': torch.tensor(7),
    }
    return {
        'epoch': 200,
        'model': model,
        'optimizer': {'state': {}, 'param_groups': []},
    }


@pytest.fixture(scope='module')
def mit_b2_weights() -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """RGB and HHA encoder weights of a DeCUR MiT-B2 (with the 2048-d head)."""
    torch.manual_seed(0)
    rgb = timm.create_model('mit_b2', num_classes=2048).state_dict()
    return rgb, perturbed(rgb, 0.25)


def test_joint_file_loads_encoders_heads_and_projectors(
    tmp_path: Path, mit_b2_weights: tuple[dict[str, Tensor], dict[str, Tensor]]
) -> None:
    rgb, hha = mit_b2_weights
    assert len(rgb) == 334  # 332 MiT keys + head
    checkpoint = reference_joint(rgb, hha)
    assert len(checkpoint['model']) == 697  # documented MiT-B2 joint total
    path = tmp_path / 'mitb2_sunrgbd_rgb_hha_decur_ep200.pth'
    torch.save(checkpoint, path)

    task = DeCURTask(weights=str(path), **TASK)
    for m, expected in (('rgb', rgb), ('hha', hha)):
        loaded = task.backbones[m].state_dict()
        assert loaded.keys() == expected.keys()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), m
        assert loaded['head.weight'].shape == (2048, 512)
        projector = checkpoint['model'][f'module.projector{1 + (m == "hha")}.0.weight']
        assert torch.equal(task.projectors[m][0].weight, projector)
    # The head feeds the projector: pooled 512 -> 2048 -> embedding.
    x = torch.rand(2, 3, 32, 32)
    h, z = task.embed('hha', x)
    assert h.shape == (2, 2048)
    assert z.shape == (2, DIMS[-1])
    assert torch.isfinite(task.training_step({'image_rgb': x, 'image_hha': x}, 0))


@pytest.mark.filterwarnings('ignore:projector .* not loaded')
def test_joint_file_without_head_kwargs_warns_in_pretraining_only(
    tmp_path: Path, mit_b2_weights: tuple[dict[str, Tensor], dict[str, Tensor]]
) -> None:
    path = tmp_path / 'mitb2_sunrgbd_rgb_hha_decur_ep200.pth'
    torch.save(reference_joint(*mit_b2_weights), path)
    headless = {k: v for k, v in TASK.items() if k != 'backbone_kwargs'}
    # The pretrained 512 -> 2048 head feeds the projector: dropping it is a change.
    with pytest.warns(UserWarning, match='holds an encoder head') as record:
        task = DeCURTask(weights=str(path), **headless)
    heads = [str(w.message) for w in record if 'encoder head' in str(w.message)]
    assert [m.split("'")[1] for m in heads] == ['rgb', 'hha']
    assert 'head.weight (2048, 512)' in heads[0]
    assert 'backbone_kwargs: {num_classes: 2048}' in heads[0]
    assert 'fed the backbone output (512-d)' in heads[0]
    # What used to be the only sign: the released projectors no longer fit.
    assert any('(64, 2048) vs (64, 512)' in str(w.message) for w in record)
    assert 'head.weight' not in task.backbones['rgb'].state_dict()
    # Downstream use takes the encoder only: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        downstream = MultimodalClassificationTask(
            modalities=['rgb', 'hha'], model='mit_b2', weights=str(path)
        )
    assert torch.equal(
        downstream.encoders['hha'].norm4.weight, mit_b2_weights[1]['norm4.weight']
    )


def test_backbone_files_load_into_encoders_and_task(
    tmp_path: Path, mit_b2_weights: tuple[dict[str, Tensor], dict[str, Tensor]]
) -> None:
    files = {}
    for m, state in zip(('rgb', 'hha'), mit_b2_weights, strict=True):
        # Released backbone files: plain dict, prefix and head removed (rows 20/21).
        plain = {k: v for k, v in state.items() if not k.startswith('head.')}
        assert len(plain) == 332
        files[m] = tmp_path / f'mitb2_sunrgbd_backbone_{m}_decur_ep200.pth'
        torch.save(plain, files[m])

    encoder = timm.create_model('mit_b2', num_classes=0)
    encoder.load_state_dict(torch.load(files['hha'], weights_only=True))  # strict
    assert torch.equal(
        encoder.state_dict()['block3.5.mlp.fc2.weight'],
        mit_b2_weights[1]['block3.5.mlp.fc2.weight'],
    )

    task = DeCURTask(weights={m: str(p) for m, p in files.items()}, **TASK)
    for m, state in zip(('rgb', 'hha'), mit_b2_weights, strict=True):
        loaded = task.backbones[m].state_dict()
        assert all(torch.equal(loaded[k], state[k]) for k in state if 'head' not in k)
        # No head in the file: the task's own head stays (not the pretrained one).
        assert not torch.equal(loaded['head.weight'], state['head.weight'])

    bad = torch.load(files['rgb'], weights_only=True) | {
        'patch_embed5.x': torch.ones(1)
    }
    with pytest.raises(
        ValueError, match=r"backbone 'rgb'.*unexpected keys: patch_embed5"
    ):
        task.load_backbone_state('rgb', bad, source='bad.pth')


def test_classifier_keys_follow_the_backbone(tmp_path: Path) -> None:
    # Generic rule, checked on a small ResNet: a head in the file is dropped when
    # the backbone has none, loaded when it has one, and may be absent.
    small: dict[str, Any] = {
        'modalities': ('rgb', 'hha'),
        'model': 'resnet18',
        'projector_dims': (16, 16),
        'common_dim': 8,
    }
    with_fc = timm.create_model('resnet18', num_classes=10).state_dict()
    without_fc = {k: v for k, v in with_fc.items() if not k.startswith('fc.')}
    for name, state in (('with_fc', with_fc), ('without_fc', without_fc)):
        torch.save(state, tmp_path / f'{name}.pth')
    weights = {
        'rgb': str(tmp_path / 'with_fc.pth'),
        'hha': str(tmp_path / 'without_fc.pth'),
    }
    with pytest.warns(UserWarning, match=r'\(10, 512\)\) .* lacks') as record:
        plain = DeCURTask(weights=weights, **small)
    assert len(record) == 1  # the hha file has no head: nothing dropped
    assert 'backbone_kwargs: {num_classes: 10}' in str(record[0].message)
    assert 'fc.weight' not in plain.backbones['rgb'].state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        headed = DeCURTask(
            weights=weights, backbone_kwargs={'num_classes': 10}, **small
        )
    assert torch.equal(headed.backbones['rgb'].fc.weight, with_fc['fc.weight'])
    assert not torch.equal(headed.backbones['hha'].fc.weight, with_fc['fc.weight'])
    assert torch.equal(headed.backbones['hha'].conv1.weight, with_fc['conv1.weight'])


@pytest.mark.slow
def test_mit_b5_layouts_match_the_released_counts() -> None:
    torch.manual_seed(0)
    encoder = timm.create_model('mit_b5', num_classes=2048)
    rgb = encoder.state_dict()
    assert len(rgb) == 1054  # 1052 + head
    hha = perturbed(rgb, -0.5)
    checkpoint = reference_joint(rgb, hha)
    assert len(checkpoint['model']) == 2137  # documented MiT-B5 joint total
    backbones, projectors = split_joint_state_dict(
        checkpoint['model'], ('rgb', 'hha'), 'mitb5 joint'
    )
    assert backbones['hha'].keys() == rgb.keys()
    assert len(projectors['rgb']) == 13
    encoder.load_state_dict(backbones['hha'])  # strict, head included
    assert torch.equal(encoder.head.bias, hha['head.bias'])
    # Backbone file (rows 23/24): the 1052 keys load strictly into a head-less B5.
    plain = {k: v for k, v in backbones['hha'].items() if not k.startswith('head.')}
    assert len(plain) == 1052
    encoder.head = torch.nn.Identity()
    encoder.load_state_dict(plain)
    assert encoder(torch.rand(1, 3, 64, 64)).shape == (1, 512)
