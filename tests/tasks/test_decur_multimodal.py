"""DeCURTask with more than two modalities."""

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from torchgeo_decur import DeCURTask
from torchgeo_decur.losses import decur_loss_multi
from torchgeo_decur.tasks import (
    MultimodalBarlowTwinsTask,
    MultimodalClassificationTask,
    MultimodalCLIPTask,
)
from torchgeo_decur.weights import DeCURResNet50_Weights

TINY: dict[str, Any] = {
    'modalities': ['s1', 's2', 'dem'],
    'in_channels': {'dem': 1},
    'model': 'resnet18',
    'projector_dims': [32, 32],
    'common_dim': 24,
    'crop_size': 32,
}


def batch(n: int = 4) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        'image_s1': torch.rand(n, 2, 40, 40, generator=g),
        'image_s2': torch.rand(n, 13, 40, 40, generator=g),
        'image_dem': torch.rand(n, 1, 40, 40, generator=g),
    }


def test_one_encoder_and_projector_per_modality_in_order() -> None:
    task = DeCURTask(**TINY)
    assert list(task.backbones) == ['s1', 's2', 'dem']
    assert list(task.projectors) == ['s1', 's2', 'dem']
    assert task.backbones['dem'](torch.rand(2, 1, 32, 32)).shape == (2, 512)


def test_loss_and_logged_terms_by_modality_name() -> None:
    task = DeCURTask(**TINY)
    g = torch.Generator().manual_seed(1)
    embeddings = {
        m: [torch.randn(6, 32, generator=g) for _ in range(2)]
        for m in ('s1', 's2', 'dem')
    }
    out = task.compute_loss(embeddings)
    direct = decur_loss_multi([embeddings[m] for m in ('s1', 's2', 'dem')], 24)
    assert torch.equal(out['loss'], direct.total)
    assert torch.equal(out['intra_dem'], direct.intra[2])
    assert torch.equal(out['common_s1_dem'], direct.common[0, 2])
    assert torch.equal(out['unique_s2_dem'], direct.unique[1, 2])
    assert torch.equal(out['common_diag_s1_s2'], direct.common_diag[0, 1])
    expected = {'loss'}
    expected |= {f'intra_{m}' for m in ('s1', 's2', 'dem')}
    for pair in ('s1_s2', 's1_dem', 's2_dem'):
        expected |= {f'{t}_{pair}' for t in ('common', 'unique')}
        expected |= {f'{t}_diag_{pair}' for t in ('common', 'unique')}
    # The two-modality names (common, unique, ...) exist only for M = 2.
    assert set(out) == expected


def test_two_modalities_keep_their_names() -> None:
    task = DeCURTask(model='resnet18', projector_dims=[32, 32], common_dim=24)
    g = torch.Generator().manual_seed(2)
    embeddings = {
        m: [torch.randn(6, 32, generator=g) for _ in range(2)] for m in ('s1', 's2')
    }
    out = task.compute_loss(embeddings)
    assert torch.equal(out['common'], out['common_s1_s2'])
    assert torch.equal(out['unique_diag'], out['unique_diag_s1_s2'])
    assert {'intra_s1', 'intra_s2', 'common_diag', 'unique'} <= set(out)


def test_training_step_backpropagates_into_every_encoder() -> None:
    task = DeCURTask(**TINY)
    loss = task.training_step(batch(), 0)
    assert torch.isfinite(loss)
    loss.backward()
    for m in ('s1', 's2', 'dem'):
        grads = [p.grad for p in task.backbones[m].parameters() if p.grad is not None]
        assert grads, m
        assert any(g.abs().sum() > 0 for g in grads), m


def test_aligned_crops_with_three_modalities() -> None:
    task = DeCURTask(aligned_crops=True, **TINY)
    views = task.augment(task.split_views(batch()))
    assert [v[0].shape[1:] for v in views.values()] == [
        (2, 32, 32),
        (13, 32, 32),
        (1, 32, 32),
    ]
    bad = batch()
    bad['image_dem'] = torch.rand(4, 1, 20, 20)
    with pytest.raises(ValueError, match=r'needs all modalities on the same grid'):
        task.augment(task.split_views(bad))


@pytest.mark.parametrize('cls', [MultimodalBarlowTwinsTask, MultimodalCLIPTask])
def test_baselines_refuse_more_than_two_modalities(cls: type) -> None:
    with pytest.raises(
        ValueError, match=rf'{cls.__name__} is defined for 2 modalities, got 3'
    ):
        cls(**{k: v for k, v in TINY.items() if k != 'common_dim'})


def test_joint_member_needs_two_modalities() -> None:
    joint = next(m for m in DeCURResNet50_Weights if m.is_joint)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match='holds two encoders, but the task has 3'):
        DeCURTask(**{**TINY, 'weights': joint})


def test_late_fusion_takes_the_encoders_of_a_three_modality_run(tmp_path: Path) -> None:
    pretrained = DeCURTask(**TINY)
    path = tmp_path / 'decur3.ckpt'
    torch.save(
        {
            'state_dict': pretrained.state_dict(),
            'hyper_parameters': dict(pretrained.hparams),
        },
        path,
    )
    task = MultimodalClassificationTask(
        modalities=['s1', 's2', 'dem'],
        in_channels={'dem': 1},
        model='resnet18',
        num_classes=5,
        weights=str(path),
    )
    for m in ('s1', 's2', 'dem'):
        for key, value in pretrained.backbones[m].state_dict().items():
            assert torch.equal(task.encoders[m].state_dict()[key], value), (m, key)
    data = batch(2) | {'label': torch.randint(0, 2, (2, 5))}
    loss = task.training_step(data, 0)
    assert torch.isfinite(loss)
