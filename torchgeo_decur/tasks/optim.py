"""Optimiser and learning-rate schedule of the self-supervised tasks.

Parameters are split by shape into weights (2+ dims) and biases / norms (1-D), as
the DeCUR reference does, and trained with AdamW or LARS under a linear warm-up
followed by a cosine decay.
"""

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypedDict

import lightning.pytorch as pl
import torch
from lightly.utils.lars import LARS
from torch import nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR

from ..losses.common import check_non_negative


class OptimizerOptions(TypedDict, total=False):
    """Less common optimiser settings (all optional).

    Attributes:
        lr_biases: Learning rate of biases and norm parameters (1-D parameters,
            and any 0-D ones); default: ``lr``.
        decay_biases: Whether the 1-D parameters get ``weight_decay`` too. None
            (default) does what the reference's optimisers did: AdamW decays
            them, LARS excludes them from decay and from the layer-wise
            adaptation. 0-D parameters (CLIP's temperature) are never decayed.
        momentum: LARS momentum (default 0.9).
    """

    lr_biases: float | None
    decay_biases: bool | None
    momentum: float


class ScheduleOptions(TypedDict, total=False):
    """Learning-rate schedule: linear warm-up, then cosine decay (all optional).

    Attributes:
        warmup_epochs: Length of the warm-up in epochs (default 0; a whole
            number with ``interval='epoch'``).
        epochs: Length of warm-up + cosine in epochs; None (default): the whole
            run (the Trainer's ``max_epochs`` / ``max_steps``). Longer than the
            run trains only the start of a longer schedule.
        interval: ``'step'`` (default): the rate changes after every optimiser
            step, a smooth cosine that meets the per-epoch value at each epoch
            start; ``'epoch'``: once per epoch, ``0.5 (1 + cos(pi e / E))``.
    """

    warmup_epochs: float
    epochs: int | None
    interval: Literal['step', 'epoch']


def check_optimizer_options(
    optimizer: str,
    lr: float,
    weight_decay: float,
    options: Mapping[str, Any] | None,
) -> OptimizerOptions:
    """Validate the optimiser settings and fill in the defaults.

    Args:
        optimizer: ``'adamw'`` or ``'lars'``.
        lr: Learning rate of the weights.
        weight_decay: Weight decay.
        options: :class:`OptimizerOptions` as given (None: defaults).

    Returns:
        The options with every key set.

    Raises:
        ValueError: For an unknown optimiser or option, or a negative rate or
            decay.

    Warns:
        UserWarning: For LARS with ``weight_decay == 0``, which lightly's LARS
            runs as plain SGD with momentum.
    """
    if optimizer not in ('adamw', 'lars'):
        raise ValueError(f"optimizer must be 'adamw' or 'lars', got {optimizer!r}")
    given = dict(options or {})
    unknown = sorted(set(given) - set(OptimizerOptions.__annotations__))
    if unknown:
        raise ValueError(
            f'optimizer_options has unknown keys {unknown}; known: '
            f'{sorted(OptimizerOptions.__annotations__)}'
        )
    out = OptimizerOptions(
        lr_biases=given.get('lr_biases'),
        decay_biases=given.get('decay_biases'),
        momentum=float(given.get('momentum', 0.9)),
    )
    values = {'lr': lr, 'weight_decay': weight_decay, 'momentum': out['momentum']}
    if out['lr_biases'] is not None:
        values['lr_biases'] = out['lr_biases']
    check_non_negative(**values)
    if optimizer == 'lars' and weight_decay == 0:
        warnings.warn(
            "optimizer='lars' with weight_decay=0: lightly's LARS skips the "
            'layer-wise adaptation of every parameter group without weight decay, '
            'so this trains with plain SGD + momentum; set a weight_decay > 0 '
            '(the reference used 1e-6) for LARS',
            UserWarning,
            stacklevel=3,
        )
    return out


def check_schedule(options: Mapping[str, Any] | None) -> ScheduleOptions:
    """Validate the schedule settings and fill in the defaults.

    Args:
        options: :class:`ScheduleOptions` as given (None: defaults).

    Returns:
        The options with every key set.

    Raises:
        ValueError: For an unknown key or interval, a negative warm-up, a
            fractional warm-up with ``'epoch'`` steps, or a length below 1.
    """
    given = dict(options or {})
    unknown = sorted(set(given) - set(ScheduleOptions.__annotations__))
    if unknown:
        raise ValueError(
            f'lr_schedule has unknown keys {unknown}; known: '
            f'{sorted(ScheduleOptions.__annotations__)}'
        )
    out = ScheduleOptions(
        warmup_epochs=given.get('warmup_epochs', 0.0),
        epochs=given.get('epochs'),
        interval=given.get('interval', 'step'),
    )
    if out['interval'] not in ('step', 'epoch'):
        raise ValueError(
            f"lr_schedule['interval'] must be 'step' or 'epoch', got "
            f'{out["interval"]!r}'
        )
    check_non_negative(warmup_epochs=out['warmup_epochs'])
    if out['interval'] == 'epoch' and out['warmup_epochs'] != int(out['warmup_epochs']):
        raise ValueError(
            "with lr_schedule['interval']='epoch' the learning rate changes once "
            'per epoch, so warmup_epochs must be a whole number, got '
            f'{out["warmup_epochs"]}'
        )
    epochs = out['epochs']
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1
    ):
        raise ValueError(
            f"lr_schedule['epochs'] must be a positive integer or None, got {epochs!r}"
        )
    return out


def parameter_groups(
    parameters: Iterable[nn.Parameter],
    optimizer: str,
    lr: float,
    weight_decay: float,
    options: OptimizerOptions,
) -> list[dict[str, Any]]:
    """Split parameters by shape into the optimiser's groups.

    The weights (2+ dims: convolution and linear kernels, ViT tokens and position
    embeddings) use ``lr`` and ``weight_decay``; the 1-D parameters (biases,
    norm scales and shifts) use ``lr_biases`` and get ``weight_decay`` only when
    ``decay_biases`` resolves to True (None: True for AdamW, False for LARS). A
    third group, only when such parameters exist, holds 0-D parameters with
    ``lr_biases`` and no decay. A parameter seen twice (a shared projector)
    appears once; frozen parameters are left out.

    Args:
        parameters: The parameters (e.g. ``module.parameters()``).
        optimizer: ``'adamw'`` or ``'lars'``.
        lr: Learning rate of the weights.
        weight_decay: Weight decay.
        options: Checked :class:`OptimizerOptions`.

    Returns:
        ``[weights, biases]`` or ``[weights, biases, scalars]``, each a dict with
        ``params``, ``lr`` and ``weight_decay``.
    """
    lr_biases = options.get('lr_biases')
    lr_biases = lr if lr_biases is None else float(lr_biases)
    decay_biases = options.get('decay_biases')
    if decay_biases is None:
        decay_biases = optimizer == 'adamw'
    weights: list[nn.Parameter] = []
    biases: list[nn.Parameter] = []
    scalars: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in parameters:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (weights if p.ndim > 1 else biases if p.ndim == 1 else scalars).append(p)
    groups: list[dict[str, Any]] = [
        {'params': weights, 'lr': lr, 'weight_decay': weight_decay},
        {
            'params': biases,
            'lr': lr_biases,
            'weight_decay': weight_decay if decay_biases else 0.0,
        },
    ]
    if scalars:
        groups.append({'params': scalars, 'lr': lr_biases, 'weight_decay': 0.0})
    return groups


def build_optimizer(
    groups: list[dict[str, Any]], optimizer: str, lr: float, momentum: float
) -> torch.optim.Optimizer:
    """AdamW or lightly's LARS over parameter groups (no schedule attached).

    lightly's LARS differs from the reference's (Barlow Twins') in two ways: it
    decides per group (a group with ``weight_decay == 0`` gets neither decay nor
    the layer-wise adaptation, whereas the reference excludes 1-D parameters by
    shape and adapts every other parameter even without decay), and its trust
    ratio is ``eta ||p|| / (||g|| + wd ||p||)`` rather than
    ``eta ||p|| / ||g + wd p||`` (never larger; negligible at wd = 1e-6). Both
    use ``eta = 0.001`` and ``v = momentum * v + update``.

    Args:
        groups: From :func:`parameter_groups`.
        optimizer: ``'adamw'`` or ``'lars'``.
        lr: Default learning rate.
        momentum: LARS momentum.

    Returns:
        The optimizer; each group's ``lr`` is its peak learning rate.
    """
    if optimizer == 'lars':
        lars: torch.optim.Optimizer = LARS(groups, lr=lr, momentum=momentum)
        return lars
    return AdamW(groups, lr=lr)


def warmup_cosine(t: int, warmup: int, length: int) -> float:
    """Learning-rate factor of a linear warm-up followed by a cosine decay.

    Args:
        t: Index of the step or epoch, from 0.
        warmup: Number of warm-up steps/epochs.
        length: Total number of steps/epochs of the schedule (warm-up included).

    Returns:
        ``(t + 1) / warmup`` during the warm-up, then
        ``0.5 * (1 + cos(pi * (t - warmup) / (length - warmup)))``, held at 0 past
        ``length``. Without warm-up this is ``0.5 * (1 + cos(pi * epoch /
        epochs))`` per epoch, the DeCUR reference's schedule.
    """
    # Not lightly's cosine_warmup_schedule: it divides by (max_steps - 1) and so
    # reaches 0 at the last epoch, while the reference's per-epoch cosine divides
    # by the epoch count and never does.
    if t < warmup:
        return (t + 1) / warmup
    progress = min(1.0, (t - warmup) / max(1, length - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def schedule_lengths(trainer: pl.Trainer) -> tuple[float, float]:
    """Optimiser steps per epoch and in the whole run, from the Trainer.

    Args:
        trainer: The Trainer the task is attached to.

    Returns:
        ``(per_epoch, total)``: ``ceil(training batches / accumulation)`` and
        Lightning's ``estimated_stepping_batches`` (which honours both
        ``max_epochs`` and ``max_steps``); ``inf`` where unknown (a loader
        without a length; a run without either limit).
    """
    total = float(trainer.estimated_stepping_batches)
    if trainer.train_dataloader is None:
        # estimated_stepping_batches returns max_steps without loading the data
        # when max_epochs is unset; the epoch length still needs the loader.
        trainer.fit_loop.setup_data()
    batches = float(trainer.num_training_batches)
    if not math.isfinite(batches):
        return math.inf, total
    return max(1, math.ceil(batches / trainer.accumulate_grad_batches)), total


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: ScheduleOptions,
    per_epoch: float,
    total: float,
) -> dict[str, Any]:
    """Lightning scheduler config of the warm-up + cosine schedule.

    The learning rate of every group is its peak value times
    :func:`warmup_cosine` of the step or epoch index:

    * ``interval='step'``: updated after every optimiser step; the warm-up
      lasts ``round(warmup_epochs x steps per epoch)`` steps and the cosine runs
      to the end of the schedule (the run's last step, or ``epochs``).
    * ``'epoch'``: updated once per epoch, ``0.5 * (1 + cos(pi * e / E))`` for
      epoch e of E (epochs of the run, or ``epochs``) after ``warmup_epochs``
      epochs of warm-up; it never reaches 0.

    Args:
        optimizer: The optimiser.
        schedule: Checked :class:`ScheduleOptions`.
        per_epoch: Optimiser steps per epoch (see :func:`schedule_lengths`).
        total: Optimiser steps of the run.

    Returns:
        ``{'scheduler': LambdaLR, 'interval': ...}``.

    Raises:
        ValueError: If the schedule's length cannot be known: a run without
            ``max_epochs`` or ``max_steps``, or a loader without a length while
            the schedule is set in epochs.
    """
    interval = schedule.get('interval', 'step')
    warmup_epochs = float(schedule.get('warmup_epochs', 0.0))
    horizon = schedule.get('epochs')
    in_epochs = interval == 'epoch' or horizon is not None or warmup_epochs > 0
    if in_epochs and not math.isfinite(per_epoch):
        raise ValueError(
            'the training loader has no length, so the epoch-based parts of the '
            'learning-rate schedule (lr_schedule warmup_epochs, epochs, '
            "interval='epoch') are undefined; use a sized dataset or leave them at "
            'their defaults with Trainer(max_steps=...)'
        )
    if horizon is None and not math.isfinite(total):
        raise ValueError(
            'the cosine learning-rate schedule needs a finite run: set '
            "Trainer(max_epochs=...) or Trainer(max_steps=...), or lr_schedule's "
            'epochs'
        )
    if interval == 'epoch':
        length = int(horizon or math.ceil(total / per_epoch))
        warmup = min(length, int(warmup_epochs))
    else:
        length = int(horizon * per_epoch if horizon else max(1, total))
        warmup = min(length, round(warmup_epochs * per_epoch)) if warmup_epochs else 0

    def factor(t: int) -> float:
        return warmup_cosine(t, warmup, length)

    return {'scheduler': LambdaLR(optimizer, factor), 'interval': interval}


__all__ = (
    'OptimizerOptions',
    'ScheduleOptions',
    'build_optimizer',
    'check_optimizer_options',
    'check_schedule',
    'parameter_groups',
    'schedule_lengths',
    'warmup_cosine',
    'warmup_cosine_scheduler',
)
