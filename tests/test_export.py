"""torchgeo-decur export: a trained DeCURTask in the released layouts, round-tripped."""

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import segmentation_models_pytorch as smp
import timm
import torch
import torchvision
from lightning.pytorch import LightningDataModule
from torch import Tensor, nn
from torchgeo.models import get_model

from torchgeo_decur import DeCURTask
from torchgeo_decur.cli import main
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule, SUNRGBDDataModule
from torchgeo_decur.export import export_checkpoint
from torchgeo_decur.models import LAYER3_SETTINGS, LAYER4_SETTINGS, DeformableAttention
from torchgeo_decur.transforms import ssl4eo_s12_statistics

from .conftest import DATA, quiet_trainer

#: A 3-layer projector, like the released 8192-8192-8192 one (13 keys).
SMALL = {'projector_dims': [32, 32, 32], 'common_dim': 24, 'crop_size': 32}

#: Key totals of the released joint files: two encoders (RN50 318,
#: ViT-S/16 150, MiT-B2 334 with its head), two 13-key projectors, 3 bn buffers and,
#: for RDA, four 14-key attention blocks.
RELEASED_TOTALS = {
    'resnet50': 665,
    'resnet50_rda': 721,
    'vit_small_patch16_224': 329,
    'mit_b2': 697,
}

#: Encoder output that the reference projector takes (MiT: its 2048-d head).
FEATURES = {
    'resnet50': 2048,
    'resnet50_rda': 2048,
    'vit_small_patch16_224': 384,
    'mit_b2': 2048,
}


def reference_model(
    model: str, in_chans: Sequence[int], dims: Sequence[int]
) -> nn.Module:
    """The reference ``DeCUR`` module tree wrapped like DDP.

    Built from torchvision / smp / timm and plain layers, not from this package's
    task: ``module.backbone_1/2`` (torchvision ResNet-50 with ``fc = Identity``,
    timm ViT without head, smp MiT + Linear(512, 2048) ``head``),
    ``module.projector1/2`` (Linear without bias, BatchNorm1d, ReLU, ...),
    ``module.bn = BatchNorm1d(K, affine=False)`` and, for RDA,
    ``module.da1_l3`` ... ``module.da2_l4``. Built on the meta device where the
    library allows it (smp's MiT does not).
    """
    device = 'cpu' if model == 'mit_b2' else 'meta'
    with torch.device(device):
        decur = nn.Module()
        for i, channels in enumerate(in_chans, start=1):
            backbone: nn.Module
            if model.startswith('resnet50'):
                backbone = torchvision.models.resnet50()
                backbone.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
                backbone.fc = nn.Identity()
            elif model == 'mit_b2':
                backbone = smp.encoders.get_encoder('mit_b2', in_channels=channels)
                backbone.head = nn.Linear(512, 2048)
            else:
                backbone = timm.create_model(model, in_chans=channels, num_classes=0)
            decur.add_module(f'backbone_{i}', backbone)
            sizes = (FEATURES[model], *dims)
            layers: list[nn.Module] = []
            for j in range(len(dims)):
                layers.append(nn.Linear(sizes[j], sizes[j + 1], bias=False))
                if j < len(dims) - 1:
                    layers += [nn.BatchNorm1d(sizes[j + 1]), nn.ReLU()]
            decur.add_module(f'projector{i}', nn.Sequential(*layers))
            if model == 'resnet50_rda':
                decur.add_module(f'da{i}_l3', DeformableAttention(**LAYER3_SETTINGS))
                decur.add_module(f'da{i}_l4', DeformableAttention(**LAYER4_SETTINGS))
        decur.add_module('bn', nn.BatchNorm1d(dims[-1], affine=False))
        wrapper = nn.Module()
        wrapper.add_module('module', decur)
    return wrapper


def assert_released_layout(
    joint: dict[str, Tensor], model: str, in_chans: Sequence[int], dims: Sequence[int]
) -> None:
    """The exported joint dict has the released key total and loads strictly."""
    assert len(joint) == RELEASED_TOTALS[model]
    assert torch.equal(joint['module.bn.running_mean'], torch.zeros(dims[-1]))
    assert torch.equal(joint['module.bn.running_var'], torch.ones(dims[-1]))
    assert joint['module.bn.num_batches_tracked'].dtype == torch.int64
    # Strict: every key of the reference model, nothing else, with its shape.
    reference = reference_model(model, in_chans, dims)
    reference.load_state_dict(joint, strict=True, assign=True)


@pytest.fixture(scope='module')
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[DeCURTask, Path]:
    """A ResNet-50 DeCURTask after one training step, and its Lightning checkpoint."""
    root = tmp_path_factory.mktemp('export')
    task = DeCURTask(**SMALL)
    trainer = quiet_trainer(
        max_steps=1,
        default_root_dir=root,
    )
    data = SSL4EOS12PairsDataModule(
        root=str(Path(DATA, 'ssl4eo_s12')), size=24, batch_size=2
    )
    trainer.fit(task, datamodule=data)
    path = root / 'decur.ckpt'
    trainer.save_checkpoint(path)
    return task.eval(), path


def test_export_round_trips(
    trained: tuple[DeCURTask, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    task, ckpt = trained
    assert main(['export', str(ckpt), '--output-dir', str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['model'] == 'resnet50'
    assert summary['modalities'] == ['s1', 's2']
    files = {k: Path(v) for k, v in summary['files'].items()}
    assert files == {
        'joint': tmp_path / 'decur_joint_decur.pth',
        's1': tmp_path / 'decur_s1_decur.pth',
        's2': tmp_path / 'decur_s2_decur.pth',
        's1_timm': tmp_path / 'decur_s1_timm',
        's2_timm': tmp_path / 'decur_s2_timm',
        'input_scaling': tmp_path / 'decur_input_scaling.json',
    }
    # The SSL4EO-S12 data module's scaling travels with the export.
    scaling = json.loads(files['input_scaling'].read_text())
    assert scaling['statistics'] == {
        's1': ssl4eo_s12_statistics('s1'),
        's2': ssl4eo_s12_statistics('s2c'),
    }

    # The released layouts, exactly.
    joint = torch.load(files['joint'], weights_only=True)['model']
    prefixes = {k.split('.')[1] for k in joint}
    assert prefixes == {'backbone_1', 'backbone_2', 'projector1', 'projector2', 'bn'}
    assert all(k.startswith('module.') for k in joint)
    assert_released_layout(joint, 'resnet50', (2, 13), SMALL['projector_dims'])
    single = torch.load(files['s2'], weights_only=True)
    assert set(single) == set(task.backbones['s2'].state_dict())
    assert len(single) == 318

    x1, x2 = torch.rand(2, 2, 32, 32), torch.rand(2, 13, 32, 32)
    with torch.no_grad():
        f1, f2 = task.backbones['s1'](x1), task.backbones['s2'](x2)
        for weights, modality, x, expected in (
            (files['joint'], 1, x1, f1),
            (files['joint'], 2, x2, f2),
            (files['s1'], None, x1, f1),
            (files['s2'], None, x2, f2),
        ):
            encoder = get_model(
                'decur_resnet50', weights=str(weights), modality=modality, num_classes=0
            )
            assert torch.allclose(encoder.eval()(x), expected, rtol=1e-5, atol=1e-6)

    # A new task continues from the exported joint file, projectors included.
    again = DeCURTask(weights=str(files['joint']), **SMALL).eval()
    for m in ('s1', 's2'):
        for ours, theirs in zip(
            again.projectors[m].state_dict().values(),
            task.projectors[m].state_dict().values(),
            strict=True,
        ):
            assert torch.equal(ours, theirs)


#: The other architectures: task arguments, data module and test input size.
CASES: dict[str, dict[str, Any]] = {
    'resnet50_rda': {
        'task': {'model': 'resnet50_rda', 'crop_size': 48},
        'size': 48,
    },
    'vit_small_patch16_224': {
        'task': {
            'model': 'vit_small_patch16_224',
            'backbone_kwargs': {'dynamic_img_size': True},
        },
        'size': 32,
    },
    'mit_b2': {
        'task': {
            'model': 'mit_b2',
            'modalities': ('rgb', 'hha'),
            'backbone_kwargs': {'num_classes': 2048},
            'augmentations': {'rgb': 'rgb', 'hha': 'depth'},
        },
        'size': 32,
    },
}


def train_one_step(case: dict[str, Any], root: Path) -> tuple[DeCURTask, Path]:
    """Fit a DeCURTask for one step on fixture data and save its checkpoint."""
    task = DeCURTask(**(SMALL | case['task']))
    data: LightningDataModule
    if task.modalities == ('rgb', 'hha'):
        data = SUNRGBDDataModule(
            root=os.path.join(DATA, 'sunrgbd'), split='train', size=32, batch_size=2
        )
    else:
        data = SSL4EOS12PairsDataModule(
            root=str(Path(DATA, 'ssl4eo_s12')), size=24, batch_size=2
        )
    trainer = quiet_trainer(max_steps=1, default_root_dir=root)
    trainer.fit(task, datamodule=data)
    path = root / 'decur.ckpt'
    # Without the optimizer state (3x the model), which export does not read.
    trainer.save_checkpoint(path, weights_only=True)
    return task.eval(), path


@pytest.mark.usefixtures('fast_init')
@pytest.mark.parametrize('model', list(CASES))
def test_export_round_trips_other_architectures(model: str, tmp_path: Path) -> None:
    case = CASES[model]
    task, ckpt = train_one_step(case, tmp_path)
    summary = export_checkpoint(ckpt, tmp_path / 'out', name='mine')
    files = summary['files']
    m1, m2 = task.modalities
    channels = (task.in_channels[m1], task.in_channels[m2])
    joint = torch.load(files['joint'], weights_only=True)['model']
    assert_released_layout(joint, model, channels, SMALL['projector_dims'])
    singles = {m: torch.load(files[m], weights_only=True) for m in (m1, m2)}
    if model == 'resnet50_rda':
        # Each encoder's own blocks go to its file: da1 (modality 1), da2 (2).
        for m, own, other in ((m1, 'da1_', 'da2_'), (m2, 'da2_', 'da1_')):
            assert len(singles[m]) == 318 + 28
            assert sum(k.startswith(own) for k in singles[m]) == 28
            assert not any(k.startswith(other) for k in singles[m])
            assert torch.equal(
                singles[m][f'{own}l4.proj_q.weight'],
                task.backbones[m].da_l4.proj_q.weight,
            )
    if model == 'mit_b2':
        # Backbone files: the 332 smp keys, without DeCUR's pretraining head.
        assert all(len(s) == 332 for s in singles.values())

    kwargs = case['task'].get('backbone_kwargs', {})
    size = case['size']
    with torch.no_grad():
        for position, m in enumerate((m1, m2), start=1):
            backbone = task.backbones[m]
            x = torch.rand(2, task.in_channels[m], size, size)
            expected = backbone(x)
            from_joint = get_model(
                f'decur_{model}',
                weights=str(files['joint']),
                modality=position,
                **({'num_classes': 0} | kwargs),
            ).eval()
            assert torch.allclose(from_joint(x), expected, rtol=1e-5, atol=1e-5)
            from_file = get_model(
                f'decur_{model}',
                weights=str(files[m]),
                **(kwargs | {'num_classes': 0}),
            ).eval()
            if model == 'mit_b2':
                expected = backbone.forward_stages(x)[-1].mean(dim=(2, 3))
            assert torch.allclose(from_file(x), expected, rtol=1e-5, atol=1e-5)


def test_export_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / 'plain.pth'
    torch.save({'conv1.weight': torch.zeros(1)}, path)
    with pytest.raises(ValueError, match='not a Lightning checkpoint'):
        export_checkpoint(path, tmp_path)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        export_checkpoint(tmp_path / 'missing.ckpt', tmp_path)


def test_cli_lists_export(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(['--help'])
    assert 'export' in capsys.readouterr().out
