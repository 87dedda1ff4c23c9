"""Training sets smaller than a batch, tiny batches, sizes and bf16: named errors."""

import os

import pytest
import torch

from torchgeo_decur import DeCURTask
from torchgeo_decur.datamodules import BigEarthNetMMDataModule, SSL4EOS12PairsDataModule
from torchgeo_decur.datamodules.utils import check_train_batches

from ..conftest import DATA, quiet_trainer

SSL4EO = os.path.join(DATA, 'ssl4eo_s12')
TINY_TASK = {
    'model': 'resnet18',
    'projector_dims': [32, 32],
    'common_dim': 24,
    'crop_size': 32,
}


def test_batch_larger_than_dataset_is_an_error() -> None:
    dm = SSL4EOS12PairsDataModule(root=SSL4EO, size=12, batch_size=8)
    dm.setup('fit')
    with pytest.raises(ValueError, match=r'batch_size=8 is larger than the 4 training'):
        dm.train_dataloader()
    dm = SSL4EOS12PairsDataModule(root=SSL4EO, size=12, batch_size=4)
    dm.setup('fit')
    assert len(dm.train_dataloader()) == 1


def test_error_counts_skipped_locations() -> None:
    dm = SSL4EOS12PairsDataModule(
        root=os.path.join(SSL4EO, 'invalid'), size=12, batch_size=4, on_invalid='skip'
    )
    with pytest.warns(UserWarning, match='skipping it'):
        dm.setup('fit')
    with pytest.raises(ValueError, match='larger than') as info:
        dm.train_dataloader()
    message = str(info.value)
    assert 'batch_size=4' in message
    assert '2 training samples' in message
    assert "on_invalid='skip' removed 4 invalid" in message


def test_small_train_fraction_warns_then_errors() -> None:
    dm = BigEarthNetMMDataModule(
        root=os.path.join(DATA, 'bigearthnet', 'v1'),
        image_size=24,
        crop_size=32,
        eval_resize=36,
        batch_size=4,
        train_fraction=0.5,
    )
    with pytest.warns(UserWarning, match=r'train_fraction=0.5 keeps 3 of 6 .*'):
        dm.setup('fit')
    with pytest.raises(ValueError, match=r'batch_size=4 .*train_fraction=0.5 of 6'):
        dm.train_dataloader()


def test_check_train_batches_per_process() -> None:
    check_train_batches(5, 3, 'x', world_size=2)  # 3 per process
    with pytest.raises(ValueError, match='3 per process on 2 processes'):
        check_train_batches(5, 4, 'x', world_size=2)
    for bad in (0, -1):
        with pytest.raises(ValueError, match='batch_size must be a positive'):
            check_train_batches(5, bad, 'x')


def test_size_zero_names_the_argument() -> None:
    dm = SSL4EOS12PairsDataModule(root=SSL4EO, size=0, batch_size=2)
    with pytest.raises(ValueError, match='size must be a positive number'):
        dm.setup('fit')


def test_batch_of_one_names_batch_size() -> None:
    task = DeCURTask(**TINY_TASK)
    batch = {
        'image_s1': torch.rand(1, 4, 24, 24),
        'image_s2': torch.rand(1, 26, 24, 24),
    }
    with pytest.raises(
        ValueError, match=r"batch of 1 sample.*data module's batch_size"
    ):
        task.training_step(batch, 0)


def test_bf16_true_trains() -> None:
    task = DeCURTask(**TINY_TASK)
    trainer = quiet_trainer(max_steps=1, precision='bf16-true')
    trainer.fit(task, SSL4EOS12PairsDataModule(root=SSL4EO, size=24, batch_size=2))
    assert trainer.global_step == 1
    weight = task.backbones['s1'].conv1.weight
    assert weight.dtype == torch.bfloat16
    assert torch.isfinite(weight).all()
