"""torchgeo-decur info: every released layout, task checkpoints, unreadable files."""

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer

from torchgeo_decur import DeCURTask
from torchgeo_decur.cli import main
from torchgeo_decur.weights import (
    INPUTS,
    DeCURMiTB2_Weights,
    DeCURResNet50_Weights,
    DeCURResNet50RDA_Weights,
    DeCURViTSmall16_Weights,
    DeCURWeightsEnum,
)
from torchgeo_decur.weights.inspect import inspect_checkpoint

from .models.released import write_group

S1_BANDS = 'VV, VH'
S2_BANDS = 'B1, B2, B3, B4, B5, B6, B7, B8, B8A, B9, B10, B11, B12'

#: joint member, architecture, layout of its backbone-only files
GROUPS = {
    'rn50': (
        DeCURResNet50_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR,
        'resnet50',
        'backbone-only (timm keys)',
    ),
    'rn50_rda': (
        DeCURResNet50RDA_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR,
        'resnet50_rda',
        'backbone-only RDA',
    ),
    'vits16': (
        DeCURViTSmall16_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR,
        'vit_small_patch16_224 (12 blocks)',
        'backbone-only (timm keys)',
    ),
    'mitb2': (
        DeCURMiTB2_Weights.RGB_HHA_SUNRGBD_DECUR,
        'mit_b2',
        'backbone-only MiT',
    ),
}


class Opaque:
    """An object that only a full (unsafe) unpickling could rebuild."""


def info(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Run the command and parse its ``key: value`` lines."""
    assert main(['info', str(path)]) == 0
    out = capsys.readouterr().out
    lines: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.strip().partition(': ')
        lines.setdefault(key, value)
    return lines


@pytest.mark.usefixtures('fast_init')
@pytest.mark.parametrize('group', list(GROUPS))
def test_released_layouts(
    group: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    joint, arch, backbone_layout = GROUPS[group]
    members: list[DeCURWeightsEnum] = [joint] + [
        m
        for m in type(joint)
        if not m.is_joint and m.meta['dataset'] == joint.meta['dataset']
    ]
    write_group(members, tmp_path)
    first, second = joint.modalities

    out = info(tmp_path / joint.meta['file'], capsys)
    assert out['layout'].startswith('joint, released DeCUR layout')
    assert out['released member'] == str(joint)
    assert out['architecture'] == arch
    assert out['modalities'] == f'{first}, {second}'
    bands = [', '.join(joint.bands_for(i)) for i in (1, 2)]
    assert (
        out[f'encoder 1 ({first})'] == f'{joint.in_chans_for(1)} channels: {bands[0]}'
    )
    assert (
        out[f'encoder 2 ({second})'] == f'{joint.in_chans_for(2)} channels: {bands[1]}'
    )
    name = joint.meta['inputs'][0]
    assert out['input scaling'] == f'{INPUTS[name].description} ({name})'
    assert out['projector'] == 'output size K = 8192'
    if group in ('rn50', 'mitb2'):  # wrapped as {'epoch': 100, 'model': ...}
        assert out['epoch'] == '100'
        assert "{'model': ...} wrapper" in out['layout']
    else:
        assert out['epoch'] == 'not stored'

    for member in members[1:]:
        out = info(tmp_path / member.meta['file'], capsys)
        assert out['layout'].startswith(backbone_layout), out['layout']
        assert out['released member'] == str(member)
        assert out['architecture'] == arch
        (modality,) = member.modalities
        assert out['modalities'] == modality
        assert out[f'encoder 1 ({modality})'] == (
            f'{member.meta["in_chans"]} channels: {", ".join(member.meta["bands"])}'
        )
        name = member.meta['inputs'][0]
        assert out['input scaling'] == f'{INPUTS[name].description} ({name})'
        assert 'projector' not in out


def test_renamed_file_still_describes_the_layout(tmp_path: Path) -> None:
    joint = DeCURResNet50_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR
    write_group([joint], tmp_path)
    renamed = tmp_path / 'my_copy.pth'
    (tmp_path / joint.meta['file']).rename(renamed)
    described = inspect_checkpoint(renamed)
    assert described.member is None
    assert described.architecture == 'resnet50'
    assert [e.in_chans for e in described.encoders] == [2, 13]
    assert described.encoders[0].bands is None
    assert 'not stored' in described.encoders[0].scaling


def test_task_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = DeCURTask(
        model='resnet18', projector_dims=[32, 32], common_dim=24, lambd=0.01
    )
    trainer = Trainer(accelerator='cpu', logger=False, max_epochs=0)
    trainer.strategy.connect(task)
    trainer.fit_loop.epoch_progress.current.completed = 3
    path = tmp_path / 'task.ckpt'
    trainer.save_checkpoint(path)
    out = info(path, capsys)
    assert out['layout'].startswith('Lightning task checkpoint')
    assert out['architecture'] == 'resnet18'
    assert out['modalities'] == 's1, s2'
    assert out['encoder 1 (s1)'] == '2 channels: names not stored in the file'
    assert out['encoder 2 (s2)'].startswith('13 channels')
    assert out['projector'] == 'output size K = 32'
    assert 'common_dim=24' in out['loss']
    assert 'lambd=0.01' in out['loss']
    assert 'loss_weighting=reference' in out['loss']
    assert out['epoch'] == '3'
    assert out['step'] == '0'
    # The bare state dict of a task is recognised too.
    bare = tmp_path / 'bare.pth'
    torch.save(task.state_dict(), bare)
    out = info(bare, capsys)
    assert out['layout'].startswith('task state dict')
    assert out['loss'] == 'settings not stored in the file'


def test_unreadable_files_get_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    code = tmp_path / 'code.pth'
    torch.save({'model': Opaque()}, code)  # loading it would run code
    listing = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], listing)
    unknown = tmp_path / 'unknown.pth'
    torch.save({'weight': torch.zeros(2, 2)}, unknown)
    for path, reason in (
        (tmp_path / 'missing.pth', 'does not exist'),
        (garbage, 'cannot be read'),
        (code, 'weights_only=True'),
        (listing, 'not a state dict'),
        (unknown, 'no ResNet, ViT or MiT encoder'),
    ):
        assert main(['info', str(path)]) == 1
        captured = capsys.readouterr()
        assert captured.out == ''
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert lines[0].startswith('torchgeo-decur info: error: ')
        assert str(path) in lines[0]
        assert reason in lines[0]
