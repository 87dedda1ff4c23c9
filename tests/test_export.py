"""torchgeo-decur export: a trained DeCURTask in the released layouts, round-tripped."""

import json
from pathlib import Path

import pytest
import torch
from torchgeo.models import get_model

from torchgeo_decur import DeCURTask
from torchgeo_decur.cli import main
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
from torchgeo_decur.export import export_checkpoint

from .conftest import DATA, quiet_trainer

SMALL = {'projector_dims': [32, 32], 'common_dim': 24, 'crop_size': 32}


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
    }

    # The released layouts, exactly.
    joint = torch.load(files['joint'], weights_only=True)['model']
    prefixes = {k.split('.')[1] for k in joint}
    assert prefixes == {'backbone_1', 'backbone_2', 'projector1', 'projector2'}
    assert all(k.startswith('module.') for k in joint)
    single = torch.load(files['s2'], weights_only=True)
    assert set(single) == set(task.backbones['s2'].state_dict())

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
