"""Downstream configs through the real torchgeo CLI: fit, then test and validate."""

import csv
import glob
import os
from pathlib import Path

import pytest
from torchgeo.main import main

from .conftest import ROOT


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Configs use paths relative to the repository root, like the README commands.
    monkeypatch.chdir(ROOT)


def logged(root: Path) -> dict[str, float]:
    """Last logged value of every metric in the CSV logs under ``root``."""
    values: dict[str, float] = {}
    for path in sorted(glob.glob(str(root / '**' / 'metrics.csv'), recursive=True)):
        with open(path) as f:
            for row in csv.DictReader(f):
                values.update({k: float(v) for k, v in row.items() if v != ''})
    return values


def run(command: str, config: str, root: Path, *extra: str) -> None:
    main(
        [
            command,
            '--config',
            os.path.join('tests', 'conf', config),
            '--trainer.accelerator=cpu',
            f'--trainer.default_root_dir={root}',
            '--trainer.logger=lightning.pytorch.loggers.CSVLogger',
            f'--trainer.logger.save_dir={root}',
            '--trainer.enable_progress_bar=false',
            *extra,
        ]
    )


def test_fit_then_test_and_validate(tmp_path: Path) -> None:
    config = 'bigearthnet_s1s2_linear.yaml'
    run('fit', config, tmp_path / 'fit', '--trainer.max_epochs=1')
    checkpoints = glob.glob(str(tmp_path / 'fit' / '**' / '*.ckpt'), recursive=True)
    assert len(checkpoints) == 1
    fitted = logged(tmp_path / 'fit')
    assert {'train_mAP_micro', 'val_loss', 'val_mAP_micro', 'val_F1_macro'} <= set(
        fitted
    )

    run('test', config, tmp_path / 'test', f'--ckpt_path={checkpoints[0]}')
    tested = logged(tmp_path / 'test')
    assert 0 <= tested['test_mAP_micro'] <= 1
    for m in ('s1', 's2'):
        for mode in ('zero', 'drop'):
            assert 0 <= tested[f'test_missing_{m}_{mode}_mAP_micro'] <= 1

    run('validate', config, tmp_path / 'val', f'--ckpt_path={checkpoints[0]}')
    validated = logged(tmp_path / 'val')
    # The checkpoint and the deterministic validation transform reproduce the value
    # logged at the end of training.
    assert validated['val_mAP_micro'] == pytest.approx(
        fitted['val_mAP_micro'], abs=1e-5
    )


@pytest.mark.parametrize(
    ('config', 'expected'),
    [
        ('bigearthnet_s1_linear.yaml', {'test_mAP_micro', 'test_F1_micro'}),
        ('bigearthnet_s2_finetune.yaml', {'test_mAP_macro', 'test_F1_macro'}),
        (
            'geonrw_rgbdem_finetune.yaml',
            {'test_mIoU', 'test_missing_rgb_drop_mIoU', 'test_missing_dem_zero_mIoU'},
        ),
        ('geonrw_rgb_finetune.yaml', {'test_mIoU', 'test_PixelAccuracy'}),
        ('bigearthnet_s1_torchgeo.yaml', {'test_loss'}),
        ('geonrw_rgb_torchgeo.yaml', {'test_loss'}),
    ],
)
def test_test_subcommand(config: str, expected: set[str], tmp_path: Path) -> None:
    run('test', config, tmp_path, '--trainer.limit_test_batches=1')
    assert expected <= set(logged(tmp_path))
