"""The one base of the multi-encoder tasks: options, weights, checkpoint record."""

import inspect
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from torchgeo_decur import (
    DeCURTask,
    MultimodalClassificationTask,
    MultimodalSegmentationTask,
)
from torchgeo_decur.checkpoints.architecture import ARCHITECTURE_KEY
from torchgeo_decur.cli import main
from torchgeo_decur.export import export_checkpoint
from torchgeo_decur.tasks.encoders import MultiEncoderTask

from ..conftest import quiet_trainer

TINY: dict[str, Any] = {'projector_dims': [16, 16], 'common_dim': 8, 'crop_size': 24}


class Pairs(Dataset[dict[str, torch.Tensor]]):
    """Four random S1 + S2 pairs, two views each."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(index)
        return {
            'image_s1': torch.rand(4, 32, 32, generator=generator),
            'image_s2': torch.rand(26, 32, 32, generator=generator),
        }


def passed(cls: type[MultiEncoderTask], args: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``cls`` as passed: ``args`` over the signature defaults."""
    out: dict[str, Any] = {}
    for klass in cls.__mro__:
        if '__init__' not in vars(klass) or not klass.__module__.startswith(
            'torchgeo_decur'
        ):
            continue
        for name, p in inspect.signature(klass.__init__).parameters.items():
            if p.default is not inspect.Parameter.empty:
                out.setdefault(name, p.default)
    out.update(args)
    out.pop('weights')
    return out


@pytest.fixture(scope='module')
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet18 DeCURTask, trained one step, checkpointed and exported."""
    root = tmp_path_factory.mktemp('exported')
    task = DeCURTask(model='resnet18', **TINY)
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(task, DataLoader(Pairs(), batch_size=2))
    trainer.save_checkpoint(root / 'source.ckpt')
    export_checkpoint(root / 'source.ckpt', root / 'export', name='run')
    return root


def test_hparams_are_exactly_the_arguments(exported: Path) -> None:
    # The architecture comes from the export; the hyperparameters stay as passed.
    args = {'weights': str(exported / 'export' / 'run_joint_decur.pth'), **TINY}
    task = DeCURTask(**args)
    assert task.encoder_spec.model == 'resnet18'
    assert task.in_channels == {'s1': 2, 's2': 13}
    assert dict(task.hparams) == passed(DeCURTask, args)
    args = {
        'modalities': ['s2'],
        'weights': str(exported / 'export' / 'run_s2_timm'),
        'num_classes': 3,
    }
    downstream = MultimodalClassificationTask(**args)
    assert downstream.encoder_spec.model == 'resnet18'
    assert downstream.in_channels == {'s2': 13}
    assert dict(downstream.hparams) == passed(MultimodalClassificationTask, args)
    source = DeCURTask.load_from_checkpoint(exported / 'source.ckpt')
    for key, value in source.backbones['s2'].state_dict().items():
        assert torch.equal(downstream.encoders['s2'].state_dict()[key], value), key


def test_checkpoint_loads_without_the_weights_it_started_from(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / 'run_joint_decur.pth'
    shutil.copy(exported / 'export' / 'run_joint_decur.pth', weights)
    task = DeCURTask(weights=str(weights), **TINY)
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(task, DataLoader(Pairs(), batch_size=2))
    ckpt = tmp_path / 'task.ckpt'
    trainer.save_checkpoint(ckpt)
    os.remove(weights)
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert saved['hyper_parameters']['model'] is None
    assert saved[ARCHITECTURE_KEY] == {
        'modalities': ['s1', 's2'],
        'model': 'resnet18',
        'in_channels': {'s1': 2, 's2': 13},
        'backbone_kwargs': {},
    }
    loaded = DeCURTask.load_from_checkpoint(ckpt, map_location='cpu')
    assert loaded.encoder_spec.model == 'resnet18'
    assert dict(loaded.hparams) == dict(task.hparams)
    for m in ('s1', 's2'):
        for key, value in task.backbones[m].state_dict().items():
            assert torch.equal(loaded.backbones[m].state_dict()[key], value), key
    assert main(['info', str(ckpt), '--json']) == 0
    assert json.loads(capsys.readouterr().out)['architecture'] == 'resnet18'
    # Resuming rebuilds the recorded encoders before the state is restored.
    resumed = DeCURTask(**saved['hyper_parameters'])
    assert resumed.encoder_spec.model == 'resnet50'
    trainer = quiet_trainer(max_steps=2)
    trainer.fit(resumed, DataLoader(Pairs(), batch_size=2), ckpt_path=ckpt)
    assert trainer.global_step == 2
    assert resumed.encoder_spec.model == 'resnet18'
    # A downstream task starts from the checkpoint: its architecture comes along.
    downstream = MultimodalSegmentationTask(
        modalities=['s1', 's2'], weights=str(ckpt), num_classes=3
    )
    assert downstream.encoder_spec.model == 'resnet18'
    assert downstream.hparams['model'] is None


FAMILIES = [
    (DeCURTask, TINY | {'model': 'resnet18'}),
    (MultimodalClassificationTask, {'model': 'resnet18'}),
]


@pytest.mark.parametrize(('cls', 'args'), FAMILIES)
def test_both_families_share_one_validation(
    cls: type[DeCURTask] | type[MultimodalClassificationTask], args: dict[str, Any]
) -> None:
    name = cls.__name__
    with pytest.raises(
        ValueError, match=rf"^{name} needs .* distinct modalities, got \['s1', 's1'\]$"
    ):
        cls(**args, modalities=['s1', 's1'])
    with pytest.raises(
        ValueError,
        match=r"^in_channels names unknown modalities \['dem'\]; modalities are "
        r"\['s1', 's2'\]$",
    ):
        cls(**args, in_channels={'dem': 1})
    with pytest.raises(
        ValueError, match=r"^in_channels has no entry for modality 'sar' and there "
    ):
        cls(**args, modalities=['sar', 's2'])
    with pytest.raises(ValueError, match=r"^rda_semantics must be .*got 'bogus'"):
        cls(**args, backbone_kwargs={'rda_semantics': 'bogus'})
    with pytest.raises(
        ValueError,
        match=r"^weights names unknown modalities \['dem'\]; modalities are "
        r"\['s1', 's2'\]$",
    ):
        cls(**args, weights={'dem': True})
    task = cls(**args)
    with pytest.raises(
        ValueError,
        match=r"^batch has no 'image_s1' for modality 's1'; keys: \['image_s2', "
        r"'label'\]$",
    ):
        task.training_step(
            {'image_s2': torch.rand(2, 13, 24, 24), 'label': torch.zeros(2)}, 0
        )
