"""DeCURTask under Lightning DDP with two CPU processes (gloo)."""

import os
from collections.abc import Mapping

import torch
from lightning.pytorch import Trainer
from torch import Tensor

from torchgeo_decur import DeCURTask
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
from torchgeo_decur.losses import gather_batch

from ..conftest import DATA


class RecordingDeCURTask(DeCURTask):
    """Also logs how many samples the gathered (global) batch holds."""

    def compute_loss(self, embeddings: Mapping[str, list[Tensor]]) -> dict[str, Tensor]:
        out = super().compute_loss(embeddings)
        z = embeddings[self.modalities[0]][0]
        out['global_batch'] = torch.tensor(float(gather_batch(z.detach()).shape[0]))
        return out


def test_two_process_ddp_trains_on_the_global_batch(tmp_path: str) -> None:
    dm = SSL4EOS12PairsDataModule(
        root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=2
    )
    task = RecordingDeCURTask(
        model='resnet18', projector_dims=[32, 32], common_dim=24, crop_size=32
    )
    trainer = Trainer(
        accelerator='cpu',
        devices=2,
        strategy='ddp_spawn',
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(task, dm)
    metrics = trainer.callback_metrics
    assert metrics['train_global_batch'] == 4  # 2 ranks x 2 samples
    assert torch.isfinite(metrics['train_loss'])
