"""Every YAML in conf/ and tests/conf/ runs through the real torchgeo CLI."""

import csv
import glob
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from lightning.pytorch.cli import LightningCLI
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchgeo.datamodules import BaseDataModule
from torchgeo.main import main
from torchgeo.tasks import BaseTask

from .conftest import ROOT

CONF = sorted(glob.glob(os.path.join(ROOT, 'conf', '*.yaml')))
TINY = sorted(glob.glob(os.path.join(ROOT, 'tests', 'conf', '*.yaml')))


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Configs use paths relative to the repository root, like the README commands.
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize('config', CONF, ids=os.path.basename)
def test_print_config(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(['fit', '--config', config, '--print_config'])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert 'class_path: torchgeo_decur.' in printed


@pytest.mark.parametrize('config', TINY, ids=os.path.basename)
def test_tiny_config_fast_dev_run(config: str, tmp_path: Path) -> None:
    main(
        [
            'fit',
            '--config',
            config,
            '--trainer.fast_dev_run=2',
            '--trainer.accelerator=cpu',
            f'--trainer.default_root_dir={tmp_path}',
        ]
    )


@pytest.fixture(scope='module')
def quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conf/quickstart.yaml as written, once, through the torchgeo CLI."""
    tmp = tmp_path_factory.mktemp('quickstart')
    out = tmp / 'quickstart'
    text = Path(ROOT, 'conf', 'quickstart.yaml').read_text()
    text = text.replace('output/quickstart', str(out))
    text = text.replace(
        'tests/data/ssl4eo_s12', str(Path(ROOT, 'tests', 'data', 'ssl4eo_s12'))
    )
    config = tmp / 'quickstart.yaml'
    config.write_text(text)
    main(['fit', '--config', str(config), '--trainer.accelerator=cpu'])
    return config


def quickstart_metrics(config: Path) -> list[dict[str, str]]:
    """Rows of the run's CSV log."""
    path = config.parent / 'quickstart' / 'csv' / 'version_0' / 'metrics.csv'
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_quickstart_learns(quickstart_run: Path) -> None:
    rows = quickstart_metrics(quickstart_run)
    val = {int(r['epoch']): r for r in rows if r.get('val_loss')}
    epochs = sorted(val)
    max_epochs = int(re.search(r'max_epochs: (\d+)', quickstart_run.read_text())[1])
    assert epochs == list(range(max_epochs))
    losses = [float(val[e]['val_loss']) for e in epochs]
    # The validation views are fixed, so the drop is learning, not noise: the
    # last epoch is clearly below the first, and the second half below the first.
    assert losses[-1] < 0.8 * losses[0], losses
    half = len(losses) // 2
    assert sum(losses[half:]) / (len(losses) - half) < sum(losses[:half]) / half
    train = [float(r['train_loss']) for r in rows if r.get('train_loss')]
    assert sum(train[-5:]) < sum(train[:5]), train
    # Collapse monitors: the spread of the L2-normalised embeddings is about
    # 1/sqrt(K) when healthy and 0 when collapsed; the common dimensions of the
    # two modalities end up positively correlated.
    k = int(re.search(r'projector_dims: \[\d+, (\d+)\]', quickstart_run.read_text())[1])
    last = val[epochs[-1]]
    for m in ('s1', 's2'):
        assert float(last[f'val_std_{m}']) > 0.5 / math.sqrt(k), last
    assert float(last['val_common_diag']) > float(val[0]['val_common_diag'])
    for row in val.values():
        assert all(math.isfinite(float(v)) for v in row.values() if v), row


def test_quickstart_logs_the_correlation_picture(quickstart_run: Path) -> None:
    run = quickstart_run.parent / 'quickstart' / 'tensorboard' / 'version_0'
    acc = EventAccumulator(str(run), size_guidance={'images': 0})
    acc.Reload()
    assert 'correlation' in acc.Tags()['images']
    max_epochs = int(re.search(r'max_epochs: (\d+)', quickstart_run.read_text())[1])
    assert len(acc.Images('correlation')) == max_epochs  # one per epoch
    assert 'val_loss' in acc.Tags()['scalars']


def test_quickstart_checkpoints_and_resumes(quickstart_run: Path) -> None:
    out = quickstart_run.parent / 'quickstart'
    last = out / 'checkpoints' / 'last.ckpt'
    done = torch.load(last, weights_only=True, map_location='cpu')
    assert list((out / 'checkpoints').glob('best-epoch=*.ckpt'))
    # One more epoch from the last checkpoint (a copy: the other tests of this
    # module read the run as it was).
    resumed_dir = quickstart_run.parent / 'resumed'
    shutil.copytree(out, resumed_dir / 'quickstart')
    config = resumed_dir / 'quickstart.yaml'
    config.write_text(
        quickstart_run.read_text().replace(str(out), str(resumed_dir / 'quickstart'))
    )
    main(
        [
            'fit',
            '--config',
            str(config),
            '--trainer.accelerator=cpu',
            f'--trainer.max_epochs={done["epoch"] + 2}',
            f'--ckpt_path={resumed_dir / "quickstart" / "checkpoints" / "last.ckpt"}',
        ]
    )
    resumed = torch.load(
        resumed_dir / 'quickstart' / 'checkpoints' / 'last.ckpt',
        weights_only=True,
        map_location='cpu',
    )
    steps_per_epoch = done['global_step'] // (done['epoch'] + 1)
    assert resumed['epoch'] == done['epoch'] + 1
    assert resumed['global_step'] == done['global_step'] + steps_per_epoch


# Trainer settings of the full configs that need GPUs (or downloads) are replaced;
# everything else (model, optimiser, data options) is built exactly as written.
ON_THIS_MACHINE = [
    '--trainer.accelerator=cpu',
    '--trainer.devices=1',
    '--trainer.num_nodes=1',
    '--trainer.strategy=auto',
    '--trainer.precision=32-true',
    '--trainer.logger=false',
    # Released weights are downloaded on first use; their loading is tested in
    # tests/models with local files.
    '--model.init_args.weights=null',
]


@pytest.mark.parametrize('config', CONF, ids=os.path.basename)
def test_full_config_builds_its_task_and_data_module(
    config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr('sys.argv', ['torchgeo'])  # pytest's own arguments
    cli = LightningCLI(
        model_class=BaseTask,
        datamodule_class=BaseDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=None,
        run=False,
        args=[
            '--config',
            config,
            *ON_THIS_MACHINE,
            f'--trainer.default_root_dir={tmp_path}',
        ],
    )
    assert isinstance(cli.model, BaseTask)
    assert isinstance(cli.datamodule, BaseDataModule)
