import re
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from torchgeo_decur import DeCURTask
from torchgeo_decur.checkpoints import (
    load_exact,
    read_checkpoint,
    split_joint_state_dict,
    unwrap_state_dict,
)
from torchgeo_decur.weights import build_encoder

TINY = {'model': 'resnet18', 'projector_dims': [32, 32], 'common_dim': 24}


def reference_joint(task: DeCURTask, prefix: str = 'module.') -> dict[str, Tensor]:
    """The released joint layout, built from a task's weights."""
    out: dict[str, Tensor] = {}
    for i, m in enumerate(task.modalities, start=1):
        out |= {
            f'{prefix}backbone_{i}.{k}': v
            for k, v in task.backbones[m].state_dict().items()
        }
        out |= {
            f'{prefix}projector{i}.{k}': v
            for k, v in task.projectors[m].state_dict().items()
        }
    out[f'{prefix}bn.running_mean'] = torch.zeros(32)
    out[f'{prefix}bn.running_var'] = torch.ones(32)
    out[f'{prefix}bn.num_batches_tracked'] = torch.tensor(0)
    return out


@pytest.mark.parametrize('wrap', [False, True])
@pytest.mark.parametrize('prefix', ['module.', ''])
def test_reference_joint_file_loads_into_task(
    tmp_path: Path, wrap: bool, prefix: str
) -> None:
    src = DeCURTask(**TINY).eval()
    state = reference_joint(src, prefix)
    path = tmp_path / 'joint.pth'
    torch.save({'epoch': 100, 'model': state, 'optimizer': {}} if wrap else state, path)
    task = DeCURTask(weights=str(path), **TINY).eval()
    x1, x2 = torch.rand(2, 2, 32, 32), torch.rand(2, 13, 32, 32)
    assert torch.equal(task.backbones['s1'](x1), src.backbones['s1'](x1))
    assert torch.equal(task.backbones['s2'](x2), src.backbones['s2'](x2))
    assert torch.equal(task.projectors['s2'][0].weight, src.projectors['s2'][0].weight)


def test_rda_blocks_follow_semantics() -> None:
    state = {
        'module.backbone_1.conv1.weight': torch.zeros(1),
        'module.backbone_2.conv1.weight': torch.zeros(1),
        'module.da1_l3.rpe_table': torch.full((1,), 1.0),
        'module.da1_l4.rpe_table': torch.full((1,), 1.0),
        'module.da2_l3.rpe_table': torch.full((1,), 2.0),
        'module.da2_l4.rpe_table': torch.full((1,), 2.0),
    }
    bb, _ = split_joint_state_dict(state, ('s1', 's2'), 'f')
    assert bb['s1']['da_l3.rpe_table'] == 1
    assert bb['s2']['da_l4.rpe_table'] == 2
    bb, _ = split_joint_state_dict(
        state, ('s1', 's2'), 'f', rda_semantics='pretraining'
    )
    assert bb['s2']['da_l3.rpe_table'] == 1
    with pytest.raises(ValueError, match='rda_semantics'):
        split_joint_state_dict(state, ('s1', 's2'), 'f', rda_semantics='both')  # type: ignore[arg-type]


def test_joint_layout_errors() -> None:
    with pytest.raises(ValueError, match='outside the DeCUR joint layout'):
        split_joint_state_dict(
            {
                'backbone_1.a': torch.zeros(1),
                'backbone_2.a': torch.zeros(1),
                'stray.b': torch.zeros(1),
            },
            ('s1', 's2'),
            'f',
        )
    with pytest.raises(ValueError, match='no backbone_2'):
        split_joint_state_dict({'backbone_1.a': torch.zeros(1)}, ('s1', 's2'), 'f')
    with pytest.raises(
        ValueError, match="no weights for modality 's2'; it has \\['rgb', 's1'\\]"
    ):
        split_joint_state_dict(
            {'backbones.s1.a': torch.zeros(1), 'backbones.rgb.a': torch.zeros(1)},
            ('s1', 's2'),
            'f',
        )
    with pytest.raises(ValueError, match='does not hold both encoders'):
        split_joint_state_dict({'conv1.weight': torch.zeros(1)}, ('s1', 's2'), 'f')


def test_unwrap_and_read(tmp_path: Path) -> None:
    sd = {'a': torch.zeros(1)}
    assert unwrap_state_dict({'state_dict': sd, 'epoch': 1}) == sd
    assert unwrap_state_dict({'model': sd}) == sd
    assert unwrap_state_dict(sd) == sd
    with pytest.raises(ValueError, match='top-level keys'):
        unwrap_state_dict({'epoch': 3})
    with pytest.raises(ValueError, match='holds a list'):
        unwrap_state_dict([1, 2])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_checkpoint(tmp_path / 'missing.pth')


def test_read_checkpoint_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / 'evil.pth'
    torch.save({'model': nn.Linear(2, 2)}, path)  # a pickled module, not a state dict
    with pytest.raises(
        ValueError,
        match=r"evil\.pth' cannot be read.*weights_only=True.*Unsupported global",
    ):
        read_checkpoint(path)


@pytest.mark.parametrize('case', ['directory', 'truncated', 'text', 'empty'])
def test_unreadable_checkpoint_is_one_error_naming_the_path(
    tmp_path: Path, case: str
) -> None:
    path = tmp_path / 'weights.pth'
    if case == 'directory':
        path.mkdir()
    elif case == 'truncated':
        torch.save({'a': torch.zeros(1000)}, path)
        path.write_bytes(path.read_bytes()[:2000])
    elif case == 'text':
        path.write_text('<html>Not Found</html>\n')
    else:
        path.write_bytes(b'')
    with pytest.raises(ValueError, match=re.escape(repr(str(path)))) as info:
        read_checkpoint(path)
    assert '\n' not in str(info.value)
    # Through the public entry points as well.
    with pytest.raises(ValueError, match=re.escape(repr(str(path)))):
        DeCURTask(weights=str(path), **TINY)
    with pytest.raises(ValueError, match=re.escape(repr(str(path)))):
        build_encoder('resnet18', weights=str(path))


def test_load_exact_lists_problems() -> None:
    model = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(
        ValueError,
        match=r'missing keys: 0.bias; unexpected keys: 1.weight; shape mismatches: 0.weight',
    ):
        load_exact(
            model, {'0.weight': torch.zeros(2, 2), '1.weight': torch.zeros(1)}, what='m'
        )
    load_exact(
        model,
        {'0.weight': torch.ones(3, 2), '0.bias': torch.ones(3), 'fc.x': torch.ones(1)},
        'm',
        ignore_unexpected=('fc.',),
    )
    assert torch.equal(model[0].weight, torch.ones(3, 2))
