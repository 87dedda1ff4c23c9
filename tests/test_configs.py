"""Every YAML in conf/ and tests/conf/ runs through the real torchgeo CLI."""

import csv
import functools
import glob
import math
import os
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchgeo.datamodules import BaseDataModule
from torchgeo.main import main
from torchgeo.tasks import BaseTask

from .conftest import ROOT

#: Recipes; conf/smoke.yaml is a profile layered over them (tests/test_journey.py).
CONF = sorted(
    c
    for c in glob.glob(os.path.join(ROOT, 'conf', '*.yaml'))
    if os.path.basename(c) != 'smoke.yaml'
)
TINY = sorted(glob.glob(os.path.join(ROOT, 'tests', 'conf', '*.yaml')))


def header(config: str) -> str:
    """The comment block a recipe starts with, without the ``#``."""
    lines = []
    with open(config) as f:
        for line in f:
            if not line.startswith('#'):
                break
            lines.append(line[1:].strip())
    return '\n'.join(lines)


def smoke_line(config: str) -> list[str]:
    """The arguments of the smoke command in a recipe's header, after ``torchgeo``.

    Raises:
        AssertionError: If the header has no ``torchgeo fit`` line with
            ``--config conf/smoke.yaml``.
    """
    text = header(config).replace('\\\n', ' ')
    name = os.path.basename(config)
    for line in text.splitlines():
        if not line.startswith('torchgeo fit '):
            continue
        args = shlex.split(line)
        if args[:2] == ['torchgeo', 'fit'] and 'conf/smoke.yaml' in args:
            assert args[2:4] == ['--config', f'conf/{name}'], line
            return args[1:]
    raise AssertionError(f'{name}: no smoke line in the header')


#: Recipes whose data ships with the repository: they run their smoke line as is.
BUNDLED = [c for c in CONF if 'Data: not bundled' not in header(c)]


def covered_line(config: str) -> list[str] | None:
    """The arguments another test runs a recipe's smoke line with, if one does.

    tests/test_journey.py (fit, info, export, reload) and
    tests/test_own_rasters_cli.py (fit, export) run some header lines already.
    """
    from .test_journey import RUNS, SMOKE
    from .test_own_rasters_cli import TINY

    name = os.path.basename(config)
    if name.startswith('decur_own_rasters'):
        return ['fit', '--config', f'conf/{name}', *TINY]
    for recipe, extra, _, _ in RUNS.values():
        if recipe == name and not any('backbone_kwargs' in a for a in extra):
            return ['fit', '--config', f'conf/{name}', *SMOKE, *extra]
    return None


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


class FitRecorder(Callback):
    """What a run did, for :func:`test_tiny_config_fast_dev_run`.

    Added on the command line (``--trainer.callbacks+=``), so the config runs
    exactly as written; each finished fit appends one record to :attr:`RECORDS`.
    """

    #: One dict per finished fit: the trainer's global step, every training
    #: loss, the logged metrics and the trainable parameters that changed.
    RECORDS: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.before = {
            name: p.detach().clone()
            for name, p in pl_module.named_parameters()
            if p.requires_grad
        }
        self.losses: list[float] = []

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs['loss'] if isinstance(outputs, Mapping) else outputs
        self.losses.append(float(loss))

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        after = dict(pl_module.named_parameters())
        self.RECORDS.append(
            {
                'global_step': trainer.global_step,
                'losses': self.losses,
                'metrics': {k: float(v) for k, v in trainer.callback_metrics.items()},
                'trainable': len(self.before),
                'changed': [
                    name
                    for name, p in self.before.items()
                    if not torch.equal(after[name].detach(), p)
                ],
            }
        )


@pytest.mark.parametrize('config', TINY, ids=os.path.basename)
def test_tiny_config_fast_dev_run(config: str, tmp_path: Path) -> None:
    FitRecorder.RECORDS.clear()
    main(
        [
            'fit',
            '--config',
            config,
            '--trainer.fast_dev_run=2',
            '--trainer.accelerator=cpu',
            f'--trainer.default_root_dir={tmp_path}',
            f'--trainer.callbacks+={__name__}.FitRecorder',
        ]
    )
    # Optimiser steps (two, or one where the fixture holds one batch) on finite
    # training losses moved the trainable weights; every logged value (training
    # and, where the data has a validation split, validation) is finite.
    [record] = FitRecorder.RECORDS
    assert record['global_step'] in (1, 2), record
    assert len(record['losses']) == record['global_step'], record
    assert all(math.isfinite(loss) for loss in record['losses']), record
    assert record['trainable'] > 0
    assert record['changed'], 'no trainable parameter changed'
    metrics = record['metrics']
    assert 'train_loss' in metrics, metrics
    assert all(math.isfinite(v) for v in metrics.values()), metrics


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder``, relative to it."""
    return {
        os.path.relpath(os.path.join(d, f), folder)
        for d, _, names in os.walk(folder)
        for f in names
    }


def test_quickstart_learns_logs_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """conf/quickstart.yaml as written, through the torchgeo CLI, then resumed.

    The run is moved with ``--trainer.default_root_dir`` alone and started from
    an empty working folder: every file it writes lands under that root. One
    test, so that the run happens once however the tests are distributed.
    """
    out = tmp_path / 'quickstart'
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    config = os.path.join(ROOT, 'conf', 'quickstart.yaml')
    data = os.path.join(ROOT, 'tests', 'data', 'ssl4eo_s12', 'quickstart')
    run = [
        'fit',
        '--config',
        config,
        '--trainer.accelerator=cpu',
        f'--trainer.default_root_dir={out}',
        f'--data.init_args.root={data}',
    ]
    main(run)
    assert os.listdir(cwd) == []
    max_epochs = int(re.search(r'max_epochs: (\d+)', Path(config).read_text())[1])

    # Learning: the validation views are fixed, so the drop is learning, not
    # noise: the last epoch is clearly below the first, the second half below
    # the first half, and the training loss falls too.
    with open(out / 'csv' / 'version_0' / 'metrics.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    val = {int(r['epoch']): r for r in rows if r.get('val_loss')}
    epochs = sorted(val)
    assert epochs == list(range(max_epochs))
    losses = [float(val[e]['val_loss']) for e in epochs]
    assert losses[-1] < 0.8 * losses[0], losses
    half = len(losses) // 2
    assert sum(losses[half:]) / (len(losses) - half) < sum(losses[:half]) / half
    train = [float(r['train_loss']) for r in rows if r.get('train_loss')]
    assert sum(train[-5:]) < sum(train[:5]), train
    # Collapse monitors: the spread of the L2-normalised embeddings (0 when
    # collapsed, about 1/sqrt(K) when spread out) grows from its value at
    # initialisation, and the common dimensions of the two modalities become
    # positively correlated.
    first, last = val[epochs[0]], val[epochs[-1]]
    for m in ('s1', 's2'):
        assert float(last[f'val_std_{m}']) > 2 * float(first[f'val_std_{m}']), last
    assert float(last['val_common_diag']) > float(first['val_common_diag']) + 0.05
    for row in val.values():
        assert all(math.isfinite(float(v)) for v in row.values() if v), row

    # The correlation picture, once per validation epoch, in TensorBoard.
    acc = EventAccumulator(
        str(out / 'tensorboard' / 'version_0'), size_guidance={'images': 0}
    )
    acc.Reload()
    assert len(acc.Images('correlation')) == max_epochs
    assert 'val_loss' in acc.Tags()['scalars']

    # Checkpoints: last.ckpt to resume from and the best epoch's weights.
    checkpoints = out / 'checkpoints'
    best = f'best-epoch={losses.index(min(losses))}.ckpt'
    assert sorted(os.listdir(checkpoints)) == [best, 'last.ckpt']
    done = torch.load(checkpoints / 'last.ckpt', weights_only=True, map_location='cpu')
    assert done['global_step'] == max_epochs  # one step per epoch
    # Resuming in place, as the config's comment tells the user, runs one more
    # epoch and refreshes last.ckpt whether or not that epoch is the best.
    main(
        [
            *run,
            f'--trainer.max_epochs={max_epochs + 1}',
            f'--ckpt_path={checkpoints / "last.ckpt"}',
        ]
    )
    resumed = torch.load(
        checkpoints / 'last.ckpt', weights_only=True, map_location='cpu'
    )
    assert resumed['epoch'] == done['epoch'] + 1
    assert resumed['global_step'] == done['global_step'] + 1  # one step per epoch

    # A rerun (a fresh one-epoch fit) replaces last.ckpt instead of writing
    # last-v1.ckpt, logs into new versions, and the header's resume command then
    # continues the rerun, not the first run.
    main([*run, '--trainer.max_epochs=1'])
    assert not [n for n in os.listdir(checkpoints) if n.startswith('last-')]
    rerun = torch.load(checkpoints / 'last.ckpt', weights_only=True, map_location='cpu')
    assert rerun['global_step'] == 1
    main([*run, '--trainer.max_epochs=2', f'--ckpt_path={checkpoints / "last.ckpt"}'])
    again = torch.load(checkpoints / 'last.ckpt', weights_only=True, map_location='cpu')
    assert again['global_step'] == 2
    for logs in ('csv', 'tensorboard'):
        assert sorted(os.listdir(out / logs)) == [f'version_{v}' for v in range(4)]
    assert os.listdir(cwd) == []
    assert {p.split(os.sep)[0] for p in files_under(out)} == {
        'checkpoints',
        'config.yaml',
        'csv',
        'tensorboard',
    }


@pytest.mark.parametrize('config', BUNDLED, ids=os.path.basename)
def test_bundled_recipe_runs_its_smoke_line(config: str, tmp_path: Path) -> None:
    """The header's CPU line of every recipe whose data ships with the package.

    Run as written (in process), moved only by ``--trainer.default_root_dir``:
    optimiser steps on finite losses, and nothing written outside that folder.
    The lines that other tests run already (:func:`covered_line`) are
    checked to be those of the header instead of run twice.
    """
    args = smoke_line(config)
    args = [a for a in args if not a.startswith('--trainer.default_root_dir')]
    covered = covered_line(config)
    if covered is not None:
        assert [a.replace(' ', '') for a in covered] == args
        return
    root = tmp_path / 'smoke'
    before = files_under(Path(ROOT))
    FitRecorder.RECORDS.clear()
    main(
        [
            *args,
            f'--trainer.default_root_dir={root}',
            f'--trainer.callbacks+={__name__}.FitRecorder',
        ]
    )
    [record] = FitRecorder.RECORDS
    assert record['global_step'] in (1, 2), record
    assert len(record['losses']) == record['global_step'], record
    assert all(math.isfinite(loss) for loss in record['losses']), record
    assert record['changed'], 'no trainable parameter changed'
    assert files_under(root) == {'checkpoints/last.ckpt', 'config.yaml'}
    assert files_under(Path(ROOT)) == before


def test_no_recipe_writes_a_full_checkpoint_every_epoch() -> None:
    """Each epoch may refresh last.ckpt and a best one, but adds no new file."""
    for config in CONF:
        with open(config) as f:
            trainer = yaml.safe_load(f)['trainer']
        assert trainer.get('logger') is False, config  # logs: RunLoggers
        checkpoints = [
            c.get('init_args', {})
            for c in trainer.get('callbacks', [])
            if c['class_path'].endswith('ModelCheckpoint')
        ]
        assert checkpoints, config
        for ckpt in checkpoints:
            assert 'dirpath' not in ckpt, config  # under default_root_dir
            if ckpt.get('save_last'):
                assert ckpt.get('enable_version_counter') is False, config
            kept = ckpt.get('save_top_k', 1)
            periodic = (
                ckpt.get('every_n_epochs', 1) > 1 or 'every_n_train_steps' in ckpt
            )
            assert kept == 0 or 'monitor' in ckpt or periodic, (config, ckpt)


#: Released weights are downloaded on first use; their loading is tested in
#: tests/weights with local files.
NO_DOWNLOAD = ['--model.init_args.weights=null']


#: Configs whose task calls ``Tensor.item()`` while it is built (smp's MiT, the
#: SUN RGB-D tasks), so not on the meta device.
BUILT_ON_CPU = {'decur_sunrgbd_mitb5.yaml', 'decur_sunrgbd_rn50.yaml'}


def _on_meta(configure: Callable[[Any], None]) -> Callable[[Any], None]:
    @functools.wraps(configure)
    def on_meta(self: Any) -> None:
        with torch.device('meta'):
            configure(self)

    return on_meta


def models_on_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task's ``configure_models`` builds on the meta device.

    For tests that check only which classes a config builds: a full-size model
    (ResNet-50 with an 8192-wide projector, ViT-S/16) then costs no memory and
    no initialisation.
    """
    import torchgeo_decur.tasks

    for name in torchgeo_decur.tasks.__all__:  # load the lazily exported tasks
        getattr(torchgeo_decur.tasks, name)
    classes, todo = [], [BaseTask]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo += cls.__subclasses__()
    for cls in classes:
        if 'configure_models' in vars(cls):
            configure = vars(cls)['configure_models']
            monkeypatch.setattr(cls, 'configure_models', _on_meta(configure))


@pytest.mark.parametrize('config', CONF, ids=os.path.basename)
def test_full_config_builds_its_task_and_data_module(
    config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr('sys.argv', ['torchgeo'])  # pytest's own arguments
    if os.path.basename(config) not in BUILT_ON_CPU:
        models_on_meta(monkeypatch)
    cli = LightningCLI(
        model_class=BaseTask,
        datamodule_class=BaseDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=None,
        run=False,
        # The header's CPU line (the recipe under conf/smoke.yaml) parses and
        # builds; the model, optimiser and data options are the recipe's own.
        args=[
            *smoke_line(config)[1:],
            *NO_DOWNLOAD,
            f'--trainer.default_root_dir={tmp_path}',
        ],
    )
    assert isinstance(cli.model, BaseTask)
    assert isinstance(cli.datamodule, BaseDataModule)
