"""Optimizer groups, learning-rate schedule and argument checks of the SSL tasks."""

import math
import warnings
from typing import Any

import pytest
import torch
from lightly.utils.lars import LARS
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.optim import AdamW, Optimizer
from torch.utils.data import DataLoader

from torchgeo_decur import DeCURTask

from ..conftest import quiet_trainer
from .test_decur import TINY

# For the Trainer runs: a ResNet-10 (timm's resnet10t, 5 M parameters), 16 px crops
# of 16 px images, batches of 2; the schedule does not depend on the model.
FAST = {**TINY, 'model': 'resnet10t', 'crop_size': 16}


def split_by_shape(task: DeCURTask) -> tuple[set[int], set[int]]:
    """Ids of the task's 2+-D and 1-D parameters."""
    params = list(task.parameters())
    return {id(p) for p in params if p.ndim > 1}, {id(p) for p in params if p.ndim == 1}


# ------------------------------------------------------------------ groups
def test_adamw_decays_every_parameter_by_default() -> None:
    # The reference: AdamW(groups, lr, weight_decay=wd) with no per-group override.
    task = DeCURTask(
        lr=1e-4, weight_decay=0.01, optimizer_options={'lr_biases': 5e-5}, **TINY
    )
    opt = task.build_optimizer()
    assert type(opt) is AdamW
    weights, biases = opt.param_groups
    two_d, one_d = split_by_shape(task)
    assert {id(p) for p in weights['params']} == two_d
    assert {id(p) for p in biases['params']} == one_d
    assert len(weights['params']) == len(two_d)  # no parameter listed twice
    assert (weights['lr'], weights['weight_decay']) == (1e-4, 0.01)
    assert (biases['lr'], biases['weight_decay']) == (5e-5, 0.01)
    # Biases and norms are there: conv1 of each encoder and a BN of each projector.
    bn = task.projectors['s1'][1]
    assert any(p is bn.weight for p in biases['params'])
    assert any(p is task.backbones['s2'].conv1.weight for p in weights['params'])


def test_adamw_option_excludes_1d_parameters_from_decay() -> None:
    task = DeCURTask(
        weight_decay=0.05, optimizer_options={'decay_biases': False}, **TINY
    )
    weights, biases = task.build_optimizer().param_groups
    assert (weights['lr'], weights['weight_decay']) == (1e-4, 0.05)
    assert (biases['lr'], biases['weight_decay']) == (1e-4, 0.0)  # lr_biases = lr
    assert {id(p) for p in biases['params']} == split_by_shape(task)[1]


def test_adamw_decay_really_shrinks_1d_parameters() -> None:
    # With zero gradients AdamW only applies the decoupled decay p *= 1 - lr * wd.
    for decay_biases, expected in ((None, 1 - 0.1 * 0.5), (False, 1.0)):
        task = DeCURTask(
            lr=0.1,
            weight_decay=0.5,
            optimizer_options={'decay_biases': decay_biases},
            **FAST,
        )
        opt = task.build_optimizer()
        bias = task.projectors['s1'][1].bias
        with torch.no_grad():
            bias.fill_(2.0)
        for p in task.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        assert torch.allclose(bias, torch.full_like(bias, 2.0 * expected))


def test_lars_excludes_1d_parameters_like_the_reference() -> None:
    task = DeCURTask(
        optimizer='lars',
        lr=0.2,
        weight_decay=1e-6,
        optimizer_options={'lr_biases': 0.0048},
        **TINY,
    )
    opt = task.build_optimizer()
    assert isinstance(opt, LARS)
    weights, biases = opt.param_groups
    two_d, one_d = split_by_shape(task)
    assert {id(p) for p in weights['params']} == two_d
    assert {id(p) for p in biases['params']} == one_d
    assert (weights['lr'], weights['weight_decay']) == (0.2, 1e-6)
    assert (biases['lr'], biases['weight_decay']) == (0.0048, 0.0)
    assert weights['momentum'] == biases['momentum'] == 0.9
    decayed = DeCURTask(
        optimizer='lars',
        weight_decay=1e-6,
        optimizer_options={'decay_biases': True},
        **TINY,
    )
    assert decayed.build_optimizer().param_groups[1]['weight_decay'] == 1e-6


def test_shared_projector_parameters_are_listed_once() -> None:
    task = DeCURTask(shared_projector=True, **TINY)
    listed = [id(p) for g in task.build_optimizer().param_groups for p in g['params']]
    assert len(listed) == len(set(listed)) == len({id(p) for p in task.parameters()})


def test_lars_without_weight_decay_warns() -> None:
    with pytest.warns(UserWarning, match='plain SGD'):
        DeCURTask(optimizer='lars', weight_decay=0.0, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        DeCURTask(optimizer='lars', weight_decay=1e-6, **TINY)
        DeCURTask(optimizer='adamw', weight_decay=0.0, **TINY)


# ---------------------------------------------------------------- schedule
class RecordLR(Callback):
    """Learning rate of every group at each optimizer step."""

    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        self.lrs.append([g['lr'] for g in optimizer.param_groups])


def loader(batches: int, batch_size: int = 2) -> DataLoader[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    samples = [
        {
            'image_s1': torch.rand(2, 16, 16, generator=g),
            'image_s2': torch.rand(13, 16, 16, generator=g),
        }
        for _ in range(batches * batch_size)
    ]
    return DataLoader(samples, batch_size=batch_size)  # type: ignore[arg-type]


def fit_lrs(task: DeCURTask, batches: int, **trainer_args: Any) -> list[float]:
    """Fit on ``batches`` batches per epoch; the weights' lr at every step."""
    record = RecordLR()
    trainer = quiet_trainer(callbacks=[record], **trainer_args)
    trainer.fit(task, train_dataloaders=loader(batches))
    return [lrs[0] for lrs in record.lrs]


def expected(steps: int, warmup: int, length: int, lr: float) -> list[float]:
    out = []
    for t in range(steps):
        if t < warmup:
            out.append(lr * (t + 1) / warmup)
        else:
            out.append(
                lr * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (length - warmup)))
            )
    return out


def test_warmup_lasts_its_epochs_with_max_steps_only() -> None:
    # 4 batches per epoch, 10 steps: 1 epoch of warm-up = 4 steps, then a cosine
    # over the remaining 6 steps (max_epochs unset; before the fix the warm-up
    # spanned the whole run).
    task = DeCURTask(lr=0.01, lr_schedule={'warmup_epochs': 1}, **FAST)
    lrs = fit_lrs(task, batches=4, max_steps=10)
    assert lrs == pytest.approx(expected(10, 4, 10, 0.01))


def test_warmup_and_cosine_with_max_epochs_and_accumulation() -> None:
    # 5 batches, 2 accumulated per step: ceil(5 / 2) = 3 steps per epoch, 2 epochs.
    task = DeCURTask(lr=0.01, lr_schedule={'warmup_epochs': 1}, **FAST)
    lrs = fit_lrs(task, batches=5, max_epochs=2, accumulate_grad_batches=2)
    assert lrs == pytest.approx(expected(6, 3, 6, 0.01))


def test_max_steps_binding_before_max_epochs() -> None:
    # max_epochs=5 allows 20 steps, max_steps=6 ends sooner: warm-up is still one
    # epoch (4 steps) and the cosine ends at step 6.
    task = DeCURTask(lr=0.01, lr_schedule={'warmup_epochs': 1}, **FAST)
    lrs = fit_lrs(task, batches=4, max_epochs=5, max_steps=6)
    assert lrs == pytest.approx(expected(6, 4, 6, 0.01))


def test_epoch_interval_is_the_reference_formula() -> None:
    # adjust_learning_rate with --cos: lr * 0.5 * (1 + cos(pi * epoch / epochs)),
    # set at the start of each epoch, both groups scaled alike.
    task = DeCURTask(
        lr=0.2,
        optimizer_options={'lr_biases': 0.0048},
        lr_schedule={'interval': 'epoch'},
        weight_decay=1e-6,
        **FAST,
    )
    record = RecordLR()
    trainer = quiet_trainer(callbacks=[record], max_epochs=4)
    trainer.fit(task, train_dataloaders=loader(2))
    assert len(record.lrs) == 8
    for step, (lr_w, lr_b) in enumerate(record.lrs):
        w = 0.5 * (1 + math.cos(math.pi * (step // 2) / 4))
        assert lr_w == pytest.approx(0.2 * w)
        assert lr_b == pytest.approx(0.0048 * w)
    assert record.lrs[-1][0] == pytest.approx(
        0.2 * 0.5 * (1 + math.cos(0.75 * math.pi))
    )


def test_schedule_horizon_longer_than_the_run() -> None:
    # The released ViT-S/16 path: the first epochs of a longer cosine (here 2 of 8).
    task = DeCURTask(lr=0.2, lr_schedule={'interval': 'epoch', 'epochs': 8}, **FAST)
    lrs = fit_lrs(task, batches=2, max_epochs=2)
    assert lrs == pytest.approx(
        [0.2, 0.2] + [0.2 * 0.5 * (1 + math.cos(math.pi / 8))] * 2
    )
    # Per step, the same horizon: 4 epochs x 2 steps of schedule, 3 steps run.
    task = DeCURTask(lr=0.2, lr_schedule={'epochs': 4}, **FAST)
    assert fit_lrs(task, batches=2, max_steps=3) == pytest.approx(
        expected(3, 0, 8, 0.2)
    )


def test_step_interval_meets_the_reference_at_epoch_starts() -> None:
    task = DeCURTask(lr=0.2, **FAST)
    lrs = fit_lrs(task, batches=2, max_epochs=3)
    for epoch in range(3):
        assert lrs[2 * epoch] == pytest.approx(
            0.2 * 0.5 * (1 + math.cos(math.pi * epoch / 3))
        )
    assert lrs[-1] > 0


def test_schedule_needs_a_finite_run() -> None:
    task = DeCURTask(**FAST)
    trainer = quiet_trainer(max_epochs=-1, max_steps=-1)
    with pytest.raises(ValueError, match='needs a finite run'):
        trainer.fit(task, train_dataloaders=loader(2))


# -------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'projector_dims': []}, 'projector_dims must name at least one layer size'),
        ({'projector_dims': [32, 0]}, r'projector_dims must be positive integers'),
        ({'lambd': -0.0051}, 'lambd must be finite and >= 0, got -0.0051'),
        (
            {'lr_schedule': {'warmup_epochs': -1}},
            'warmup_epochs must be finite and >= 0, got -1',
        ),
        ({'lr': -1e-4}, 'lr must be finite and >= 0'),
        (
            {'optimizer_options': {'lr_biases': float('nan')}},
            'lr_biases must be finite and >= 0',
        ),
        ({'optimizer_options': {'beta': 0.9}}, r"unknown keys \['beta'\]"),
        ({'weight_decay': -0.01}, 'weight_decay must be finite and >= 0'),
        ({'optimizer': 'sgd'}, "optimizer must be 'adamw' or 'lars', got 'sgd'"),
        ({'lr_schedule': {'interval': 'batch'}}, r"interval'\] must be 'step'"),
        (
            {'lr_schedule': {'interval': 'epoch', 'warmup_epochs': 0.5}},
            'warmup_epochs must be a whole number, got 0.5',
        ),
        ({'lr_schedule': {'epochs': 0}}, r"epochs'\] must be a positive integer"),
        ({'lr_schedule': {'length': 3}}, r"unknown keys \['length'\]"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeCURTask(**{**TINY, 'common_dim': 0, **kwargs})


def test_aligned_crops_need_one_grid() -> None:
    task = DeCURTask(aligned_crops=True, **TINY)
    views = {
        's1': [torch.rand(2, 2, 40, 40)] * 2,
        's2': [torch.rand(2, 13, 20, 20)] * 2,
    }
    with pytest.raises(
        ValueError,
        match=r'aligned_crops needs both modalities on the same grid, got '
        r'\(40, 40\) and \(20, 20\)',
    ):
        task.augment(views)
    # Independent crops take differently sized grids to the same crop size.
    out = DeCURTask(**TINY).augment(views)
    assert out['s1'][0].shape[-2:] == out['s2'][0].shape[-2:] == (32, 32)
