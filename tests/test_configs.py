"""Every YAML in conf/ and tests/conf/ runs through the real torchgeo CLI."""

import glob
import os
import re
from pathlib import Path

import pytest
import torch
from lightning.pytorch.cli import LightningCLI
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


def test_quickstart_trains_checkpoints_and_resumes(tmp_path: Path) -> None:
    text = Path(ROOT, 'conf', 'quickstart.yaml').read_text()
    out = tmp_path / 'quickstart'
    text = text.replace('output/quickstart', str(out))
    text = re.sub(r'max_epochs: \d+', 'max_epochs: 2', text)
    config = tmp_path / 'quickstart.yaml'
    config.write_text(text)
    main(['fit', '--config', str(config), '--trainer.accelerator=cpu'])
    last = out / 'checkpoints' / 'last.ckpt'
    assert last.is_file()
    metrics = (out / 'csv' / 'version_0' / 'metrics.csv').read_text().splitlines()[0]
    for name in (
        'train_loss',
        'train_std_s1',
        'train_common_diag',
        'train_unique_diag',
    ):
        assert name in metrics, name
    assert list((out / 'tensorboard' / 'version_0').glob('events.out.tfevents.*'))

    # Resume for two more epochs from the last checkpoint.
    main(
        [
            'fit',
            '--config',
            str(config),
            '--trainer.accelerator=cpu',
            '--trainer.max_epochs=4',
            f'--ckpt_path={last}',
        ]
    )
    resumed = torch.load(
        out / 'checkpoints' / 'last.ckpt', weights_only=True, map_location='cpu'
    )
    # 4 samples / batch 4 = 1 step per epoch; the last epoch index is 3.
    assert resumed['epoch'] == 3
    assert resumed['global_step'] == 4


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
