import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.cli import LightningCLI
from torch.utils.data import DataLoader, Dataset

from torchgeo_decur import DeCURTask
from torchgeo_decur.callbacks import KNNProbe, LinearProbe
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule

from ..conftest import DATA

TINY: dict[str, Any] = {
    'model': 'resnet18',
    'projector_dims': [32, 32],
    'common_dim': 24,
    'crop_size': 24,
}

# Channel groups of the 13-band images that a class (or label) lights up.
GROUPS = ([0, 1, 2, 3], [4, 5, 6, 7, 8], [9, 10, 11, 12])


class Separable(Dataset[dict[str, torch.Tensor]]):
    """Images whose classes differ in which bands are bright: separable by any net."""

    def __init__(self, per_class: int, multilabel: bool, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        combos = [[0], [1], [2]] if not multilabel else [[0], [1], [0, 1], [2]]
        self.samples = []
        for index, active in enumerate(combos):
            for _ in range(per_class):
                image = 0.05 * torch.rand(13, 16, 16, generator=g)
                for group in active:
                    image[GROUPS[group]] += 1.0
                if multilabel:
                    label = torch.zeros(3, dtype=torch.long)
                    label[active] = 1
                else:
                    label = torch.tensor(index)
                self.samples.append({'image': image, 'label': label})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.samples[index]


class SeparableDataModule(LightningDataModule):
    """Training split: the kNN bank; validation split: the queries."""

    def __init__(self, multilabel: bool = False) -> None:
        super().__init__()
        self.multilabel = multilabel
        self.setups = 0

    def setup(self, stage: str) -> None:
        self.setups += 1
        self.train = Separable(6, self.multilabel, seed=0)
        self.val = Separable(3, self.multilabel, seed=1)

    def train_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        return DataLoader(self.train, batch_size=8)

    def val_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        return DataLoader(self.val, batch_size=8)


def test_probes_during_fit_on_a_separable_set(tmp_path: Path) -> None:
    knn = KNNProbe(SeparableDataModule(), modality='s2', k=5)
    linear = LinearProbe(SeparableDataModule(), modality='s2', steps=100)
    multilabel = KNNProbe(
        SeparableDataModule(multilabel=True), modality='s2', k=3, task='multilabel'
    )
    every_other = KNNProbe(SeparableDataModule(), modality='s1', every_n_epochs=2)
    dm = SSL4EOS12PairsDataModule(
        root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=4
    )
    torch.manual_seed(0)
    task = DeCURTask(**TINY)
    trainer = Trainer(
        accelerator='cpu',
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[knn, linear, multilabel, every_other],
    )
    trainer.fit(task, dm)
    logged = trainer.callback_metrics
    # Chance is 1/3 (accuracy) and about 0.5 (mAP); the untrained encoder scores
    # 1.0 (test below), one epoch of DeCUR on other data may cost a query or two.
    assert logged['probe_knn_s2_acc'] >= 0.8
    assert logged['probe_linear_s2_acc'] >= 0.8
    assert logged['probe_knn_s2_map'] >= 0.8
    # Probed after epoch 2 only, so not in this one-epoch run.
    assert 'probe_knn_s1_acc' not in logged
    assert every_other.last_value is None
    assert knn.last_seconds is not None
    assert knn.last_seconds > 0
    # The encoder goes back to training mode and stays trainable.
    assert task.backbones['s2'].training
    assert all(p.requires_grad for p in task.backbones['s2'].parameters())
    assert knn.datamodule.setups == 1  # type: ignore[attr-defined]


def test_probe_scores_fall_for_permuted_labels() -> None:
    torch.manual_seed(0)
    task = DeCURTask(**TINY).eval()
    probe = KNNProbe(SeparableDataModule(), modality='s2', k=5)
    assert probe.run(task) == 1.0
    shuffled = SeparableDataModule()
    shuffled.setup('fit')
    for sample in shuffled.train.samples:
        sample['label'] = (sample['label'] + 1) % 3  # bank labels name another class
    shuffled.setup = lambda stage: None  # type: ignore[method-assign]
    assert KNNProbe(shuffled, modality='s2', k=5).run(task) == 0.0


def test_probe_errors_name_the_problem() -> None:
    task = DeCURTask(**TINY)
    with pytest.raises(ValueError, match="modality 'rgb'"):
        KNNProbe(SeparableDataModule(), modality='rgb').run(task)
    with pytest.raises(KeyError, match="'mask'"):
        KNNProbe(SeparableDataModule(), modality='s2', label_key='mask').run(task)
    with pytest.raises(ValueError, match='every_n_epochs'):
        KNNProbe(SeparableDataModule(), modality='s2', every_n_epochs=0)
    with pytest.raises(ValueError, match='task'):
        KNNProbe(SeparableDataModule(), modality='s2', task='regression')  # type: ignore[arg-type]


def test_eurosat_probe_from_yaml(tmp_path: Path) -> None:
    """The probe is configured under trainer.callbacks, with its data module."""
    config = {
        'trainer': {
            'accelerator': 'cpu',
            'logger': False,
            'callbacks': [
                {
                    'class_path': 'torchgeo_decur.callbacks.KNNProbe',
                    'init_args': {
                        'modality': 's2',
                        'every_n_epochs': 5,
                        'k': 3,
                        'datamodule': {
                            'class_path': 'torchgeo_decur.datamodules.eurosat.'
                            'EuroSATDeCURDataModule',
                            'init_args': {
                                'root': os.path.join(DATA, 'eurosat'),
                                'weights': 'DeCURResNet50_Weights.'
                                'SENTINEL2_L1C_SSL4EO_DECUR',
                                'batch_size': 10,
                            },
                        },
                    },
                }
            ],
        },
        'model': {
            'class_path': 'torchgeo_decur.DeCURTask',
            'init_args': {'modalities': ['s1', 's2'], **TINY},
        },
        'data': {
            'class_path': 'torchgeo_decur.datamodules.SSL4EOS12PairsDataModule',
            'init_args': {'root': os.path.join(DATA, 'ssl4eo_s12'), 'size': 24},
        },
    }
    path = tmp_path / 'probe.yaml'
    path.write_text(yaml.safe_dump(config))
    cli = LightningCLI(
        args=['--config', str(path)], run=False, save_config_callback=None
    )
    (probe,) = [c for c in cli.trainer.callbacks if isinstance(c, KNNProbe)]  # type: ignore[attr-defined]
    assert probe.every_n_epochs == 5
    start = time.perf_counter()
    accuracy = probe.run(cli.model)
    seconds = time.perf_counter() - start
    # 10 EuroSAT classes, one bank image each: an untrained encoder is not
    # expected to be right, only to give a valid accuracy over the 10 queries.
    assert 0.0 <= accuracy <= 1.0
    assert accuracy * 10 == pytest.approx(round(accuracy * 10))
    print(f'EuroSAT fixture kNN probe: {seconds:.2f} s')


class MissingFolderDataModule(LightningDataModule):
    """A labelled data module whose data folder does not exist."""

    def setup(self, stage: str) -> None:
        raise FileNotFoundError("no such data folder: '/nowhere/eurosat'")


def fit_with(probe: KNNProbe | LinearProbe, tmp_path: Path) -> DeCURTask:
    """One-epoch DeCUR fit with the probe; checkpoints written after every step."""
    dm = SSL4EOS12PairsDataModule(
        root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=4
    )
    task = DeCURTask(**TINY)
    trainer = Trainer(
        accelerator='cpu',
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[probe],
    )
    trainer.fit(task, dm)
    return task


@pytest.mark.parametrize(
    ('probe', 'error', 'match'),
    [
        (KNNProbe(SeparableDataModule(), modality='rgb'), ValueError, "'rgb'"),
        (LinearProbe(SeparableDataModule(), modality='rgb'), ValueError, "'rgb'"),
        (
            KNNProbe(SeparableDataModule(), modality='s2', label_key='mask'),
            KeyError,
            "'mask'",
        ),
        (
            LinearProbe(SeparableDataModule(), modality='s2', label_key='mask'),
            KeyError,
            "'mask'",
        ),
        (
            KNNProbe(MissingFolderDataModule(), modality='s2'),
            FileNotFoundError,
            '/nowhere/eurosat',
        ),
    ],
)
def test_probe_problems_stop_fit_before_the_first_step(
    probe: KNNProbe | LinearProbe,
    error: type[Exception],
    match: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps: list[int] = []
    monkeypatch.setattr(
        DeCURTask,
        'on_train_batch_start',
        lambda self, batch, index: steps.append(index),
    )
    with pytest.raises(error, match=match):
        fit_with(probe, tmp_path)
    assert steps == []  # not one training step was spent


def test_k_larger_than_the_bank_is_named(tmp_path: Path) -> None:
    # The bank holds 18 samples (3 classes x 6).
    probe = KNNProbe(SeparableDataModule(), modality='s2', k=50, every_n_epochs=5)
    with pytest.warns(UserWarning, match=r'k=50 is larger than the bank of 18'):
        fit_with(probe, tmp_path)
    task = DeCURTask(**TINY).eval()
    quiet = KNNProbe(SeparableDataModule(), modality='s2', k=5)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert quiet.run(task) == 1.0
    small = KNNProbe(SeparableDataModule(), modality='s2', k=50, max_batches=1)
    with pytest.warns(UserWarning, match='k=50 is larger than the bank of 8'):
        small.run(task)
