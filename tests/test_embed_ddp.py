"""An embedding ``predict`` run on two CPU processes (gloo): each patch once."""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from lightning.pytorch import LightningModule, Trainer
from torchgeo.datasets import RasterDataset

from torchgeo_decur.callbacks import EmbeddingWriter
from torchgeo_decur.datamodules.embedding import EmbeddingDataModule
from torchgeo_decur.embeddings import read_embeddings
from torchgeo_decur.tasks.embedding import EmbeddingTask

from .conftest import DATA

S2 = os.path.join(DATA, 'own_rasters', 's2')


class RecordingWriter(EmbeddingWriter):
    """Also notes which patch ids each rank wrote (one file per rank)."""

    def write_on_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, prediction: Any, *args: Any
    ) -> None:
        super().write_on_batch_end(trainer, pl_module, prediction, *args)
        log = Path(self.output_dir) / f'ids-rank{trainer.global_rank}.txt'
        with open(log, 'a') as f:
            f.writelines(f'{int(i)}\n' for i in prediction['patch_id'])


def run(source: Path, out: Path, devices: int) -> None:
    trainer = Trainer(
        accelerator='cpu',
        devices=devices,
        strategy='ddp_spawn' if devices > 1 else 'auto',
        logger=False,
        callbacks=[RecordingWriter(str(out))],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data = EmbeddingDataModule(
        {'s2': RasterDataset(paths=S2)}, patch_size=32, stride=24, batch_size=3
    )
    trainer.predict(EmbeddingTask(str(source)), data, return_predictions=False)


def test_two_ranks_write_every_patch_once_into_one_dataset(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = timm.create_model('resnet18', in_chans=13, num_classes=0)
    source = tmp_path / 'tiny_s2_decur.pth'
    torch.save(encoder.state_dict(), source)
    stats = {'s2': {'mean': [1000.0] * 13, 'std': [500.0] * 13}}
    (tmp_path / 'tiny_input_scaling.json').write_text(json.dumps({'statistics': stats}))
    run(source, tmp_path / 'two', devices=2)
    run(source, tmp_path / 'one', devices=1)
    two = read_embeddings(tmp_path / 'two' / 'embeddings.parquet')
    one = read_embeddings(tmp_path / 'one' / 'embeddings.parquet')
    ids = {
        rank: [int(line) for line in (tmp_path / 'two' / f'ids-rank{rank}.txt').open()]
        for rank in (0, 1)
    }
    assert ids[0], 'rank 0 wrote patches'
    assert ids[1], 'rank 1 wrote patches'
    assert not set(ids[0]) & set(ids[1])
    assert sorted(ids[0] + ids[1]) == list(range(len(one.frame)))
    assert two.frame['patch_id'].tolist() == list(range(len(one.frame)))
    assert two.frame.geometry.equals(one.frame.geometry)
    np.testing.assert_allclose(
        two.vectors['embedding'], one.vectors['embedding'], atol=1e-6, rtol=0
    )
    assert not (tmp_path / 'two' / '.parts').exists()
