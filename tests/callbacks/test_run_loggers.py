"""RunLoggers: TensorBoard and CSV logs under the trainer's default_root_dir."""

import os
from pathlib import Path

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from torch import Tensor

from torchgeo_decur.callbacks import RunLoggers


class LoggingModel(BoringModel):
    """BoringModel that logs its losses."""

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        loss = self.loss(self(batch))
        self.log('train_loss', loss)
        return loss

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log('val_loss', self.loss(self(batch)))


def trainer(root: Path, **kwargs: object) -> Trainer:
    return Trainer(
        default_root_dir=root,
        accelerator='cpu',
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=[RunLoggers(), ModelCheckpoint(save_last=True, save_top_k=0)],
        **kwargs,  # type: ignore[arg-type]
    )


def test_fit_and_validate_log_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / 'run'
    trainer(root, max_steps=2, limit_val_batches=1).fit(LoggingModel())
    # The checkpoint folder is chosen before the loggers exist: no version in it.
    assert os.listdir(root / 'checkpoints') == ['last.ckpt']
    assert os.listdir(root / 'csv') == ['version_0']
    assert os.listdir(root / 'tensorboard') == ['version_0']
    assert (root / 'csv' / 'version_0' / 'metrics.csv').is_file()
    # A second run (here: validate) logs into the next version.
    trainer(root, limit_val_batches=1).validate(LoggingModel())
    assert sorted(os.listdir(root / 'csv')) == ['version_0', 'version_1']
    assert (root / 'csv' / 'version_1' / 'metrics.csv').is_file()


def test_no_logger_is_an_error() -> None:
    with pytest.raises(ValueError, match='tensorboard and csv are both false'):
        RunLoggers(tensorboard=False, csv=False)
