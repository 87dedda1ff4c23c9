"""DeCURTask with ResNet-50-RDA encoders, per modality or shared (reference)."""

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from torchgeo_decur import DeCURTask

from ..conftest import quiet_trainer

# 48 px crops: the smallest size with a 2 x 2 layer4 map, to keep CPU time low.
RDA: dict[str, Any] = {
    'model': 'resnet50_rda',
    'projector_dims': [32, 32],
    'common_dim': 24,
    'crop_size': 48,
}


def reference_joint(task: DeCURTask) -> dict[str, Tensor]:
    """The released RDA joint layout (rn50_rda_ssl4eo-s12_joint_decur_ep100.pth), built from a task."""
    out: dict[str, Tensor] = {}
    for i, m in enumerate(task.modalities, start=1):
        for k, v in task.backbones[m].state_dict().items():
            if k.startswith(('da_l3.', 'da_l4.')):
                out[f'module.da{i}_{k[3:]}'] = v
            else:
                out[f'module.backbone_{i}.{k}'] = v
        for k, v in task.projectors[m].state_dict().items():
            out[f'module.projector{i}.{k}'] = v
    return out


def test_one_block_pair_per_modality() -> None:
    # Full Trainer steps: test_per_modality_blocks_train_under_the_trainer below,
    # and the shared variant through the CLI (tests/conf/decur_ssl4eo_s12_rda.yaml).
    torch.manual_seed(0)
    task = DeCURTask(**RDA)
    s1, s2 = task.backbones['s1'], task.backbones['s2']
    assert s1.da_l3 is not s2.da_l3
    assert s1.da_l4 is not s2.da_l4
    for m, c in (('s1', 2), ('s2', 13)):
        feats, emb = task.embed(m, torch.rand(2, c, 48, 48))
        assert feats.shape == (2, 2048)
        assert emb.shape == (2, 32)
        emb.square().sum().backward()
    for m in ('s1', 's2'):
        for block in (task.backbones[m].da_l3, task.backbones[m].da_l4):
            assert block.rpe_table.grad is not None
            assert block.rpe_table.grad.abs().sum() > 0
            assert block.conv_offset[0].weight.grad.abs().sum() > 0


def test_shared_rda_runs_modality_2_through_modality_1_blocks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = DeCURTask(**RDA).eval()
    path = tmp_path / 'rn50_rda_joint.pth'
    torch.save(reference_joint(src), path)

    task = DeCURTask(
        weights=str(path), backbone_kwargs={'shared_rda': True}, **RDA
    ).eval()
    s1, s2 = task.backbones['s1'], task.backbones['s2']
    assert s2.da_l3 is s1.da_l3
    assert s2.da_l4 is s1.da_l4
    # Modality 2 = its own ResNet from backbone_2 + modality 1's (da1) blocks.
    expected = copy.deepcopy(src.backbones['s2'])
    expected.da_l3 = src.backbones['s1'].da_l3
    expected.da_l4 = src.backbones['s1'].da_l4
    x = torch.rand(2, 13, 48, 48)
    with torch.no_grad():
        assert torch.equal(s2(x), expected(x))
        assert not torch.equal(s2(x), src.backbones['s2'](x))

    # One pair of blocks in the parameter list (and so in the optimizer).
    own = sum(p.numel() for p in task.backbones.parameters())
    separate = sum(p.numel() for p in src.backbones.parameters())
    assert separate - own == 4_211_912 + 16_791_696

    # Modality 2's loss trains the shared blocks.
    s2(x).square().sum().backward()
    assert s1.da_l4.rpe_table.grad.abs().sum() > 0
    assert s1.conv1.weight.grad is None

    # A checkpoint of the shared task reloads into a shared task.
    ckpt = tmp_path / 'task.ckpt'
    torch.save({'state_dict': task.state_dict()}, ckpt)
    again = DeCURTask(
        weights=str(ckpt), backbone_kwargs={'shared_rda': True}, **RDA
    ).eval()
    assert again.backbones['s2'].da_l3 is again.backbones['s1'].da_l3
    task.eval()
    with torch.no_grad():
        assert torch.equal(again.backbones['s2'](x), s2(x))


def test_shared_rda_needs_rda_encoders() -> None:
    with pytest.raises(ValueError, match=r'cannot share deformable attention.*da_l3'):
        DeCURTask(
            model='resnet18',
            backbone_kwargs={'shared_rda': True},
            projector_dims=[32, 32],
            common_dim=24,
        )


def test_per_modality_blocks_train_under_the_trainer() -> None:
    # The default (one block pair per modality) through a real Trainer: both
    # modalities' deformable-attention blocks are updated by the optimiser.
    torch.manual_seed(0)
    task = DeCURTask(**RDA, optimizer='adamw', lr=1e-3)
    before = {
        m: copy.deepcopy(task.backbones[m].da_l4.state_dict()) for m in task.modalities
    }
    g = torch.Generator().manual_seed(0)
    samples = [
        {
            'image_s1': torch.rand(4, 56, 56, generator=g),
            'image_s2': torch.rand(26, 56, 56, generator=g),
        }
        for _ in range(4)
    ]
    quiet_trainer(max_steps=2).fit(task, DataLoader(samples, batch_size=2))
    for m in task.modalities:
        after = task.backbones[m].da_l4.state_dict()
        changed = [k for k in after if not torch.equal(after[k], before[m][k])]
        assert 'rpe_table' in changed, m
        assert 'proj_q.weight' in changed, m
