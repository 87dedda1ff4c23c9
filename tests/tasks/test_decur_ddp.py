"""DeCURTask under Lightning DDP with two CPU processes (gloo)."""

import math
import os
import tempfile
from collections.abc import Mapping

import torch
from lightning.pytorch import Trainer
from torch import Tensor

from torchgeo_decur import DeCURTask
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
from torchgeo_decur.losses import gather_batch

from ..conftest import DATA
from ..distributed import Results


class RecordingDeCURTask(DeCURTask):
    """Also logs how many samples the gathered (global) batch holds."""

    def compute_loss(self, embeddings: Mapping[str, list[Tensor]]) -> dict[str, Tensor]:
        out = super().compute_loss(embeddings)
        z = embeddings[self.modalities[0]][0]
        out['global_batch'] = torch.tensor(float(gather_batch(z.detach()).shape[0]))
        return out


def ddp_job(rank: int, world_size: int) -> dict[str, float]:
    """In the suite's process group (tests/distributed.py): two steps under DDP.

    Lightning joins the existing group instead of starting processes: the
    variables of an external launcher tell it this process's rank.

    Returns:
        On every rank, the logged global batch size and training loss.
    """
    os.environ |= {
        'WORLD_SIZE': str(world_size),
        'RANK': str(rank),
        'LOCAL_RANK': str(rank),
        'NODE_RANK': '0',
    }
    with tempfile.TemporaryDirectory() as folder:
        dm = SSL4EOS12PairsDataModule(
            root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=2
        )
        task = RecordingDeCURTask(
            model='resnet18', projector_dims=[32, 32], common_dim=24, crop_size=32
        )
        trainer = Trainer(
            accelerator='cpu',
            devices=world_size,
            strategy='ddp',
            max_steps=2,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            default_root_dir=folder,
        )
        trainer.fit(task, dm)
    assert trainer.world_size == world_size
    assert trainer.global_rank == rank
    metrics = trainer.callback_metrics
    return {
        'global_batch': float(metrics['train_global_batch']),
        'train_loss': float(metrics['train_loss']),
        'global_step': float(trainer.global_step),
    }


def test_two_process_ddp_trains_on_the_global_batch(distributed: Results) -> None:
    for metrics in distributed['decur_task_fit']:
        assert metrics['global_batch'] == 4  # 2 ranks x 2 samples
        assert math.isfinite(metrics['train_loss'])
        assert metrics['global_step'] == 2
