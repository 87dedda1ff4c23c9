"""Stop a diverging run before it trains on, or saves, non-finite numbers.

A NaN or infinite loss makes every later step useless (NaN gradients turn every
weight into NaN), and Lightning keeps training and keeps overwriting
``last.ckpt``, so the last good state is lost. Two guards prevent that:

* :func:`check_finite_outputs`, called by the SSL tasks' ``training_step`` on
  every step, raises :class:`NonFiniteError` as soon as the loss or any logged
  term is not finite, before the optimizer steps, naming the step, the term and
  the modality whose input or embedding went bad;
* :func:`check_finite_checkpoint`, called from ``on_save_checkpoint``, refuses
  to write a checkpoint whose weights are not finite (weights can go NaN or
  infinite in an optimizer step taken with a finite loss, e.g. with a far too
  large learning rate), so the ``last.ckpt`` on disk stays the last good one.

Both are always active (no callback to add to a config); the check costs one
device synchronisation per step.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

#: What to try when the weights or activations diverged.
ADVICE = (
    'Lower the learning rate (lr, optimizer_options.lr_biases) or add a warm-up '
    '(lr_schedule.warmup_epochs), or train in '
    'precision 32-true; no checkpoint was written for this step, so the last '
    'checkpoint on disk (e.g. last.ckpt) still holds the last finite state to '
    'resume from.'
)
#: What to try when the input batch itself is not finite.
INPUT_ADVICE = (
    'The data holds NaN or infinite values: Sentinel-1 dB is -inf where the '
    'backscatter is zero, which normalization: decur maps to the bottom of its '
    'window and normalization: none passes on; use a normalisation that maps '
    'them, or clean or skip those files.'
)


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss, term or weight."""


def _describe(x: Tensor) -> str:
    """Counts of NaN, +inf and -inf values in ``x``."""
    x = x.detach()
    parts = [
        f'{int(n)} {name}'
        for name, n in (
            ('NaN', torch.isnan(x).sum()),
            ('+inf', torch.isposinf(x).sum()),
            ('-inf', torch.isneginf(x).sum()),
        )
        if n
    ]
    return ', '.join(parts) + f' of {x.numel()} values'


def _all_finite(tensors: Iterable[Tensor]) -> bool:
    """Whether every value of every tensor is finite (one device sync)."""
    flags = [torch.isfinite(t.detach()).all() for t in tensors]
    return not flags or bool(torch.stack(flags).all())


def check_finite_outputs(
    step: int,
    outputs: Mapping[str, Tensor],
    embeddings: Mapping[str, list[Tensor]],
    batch: Mapping[str, Any],
) -> None:
    """Raise if the loss or a logged term of a training step is not finite.

    Args:
        step: The trainer's global step (optimizer steps taken so far).
        outputs: ``compute_loss`` output: ``'loss'`` and further scalar terms.
        embeddings: Per modality, the embeddings (N, K) of every view.
        batch: The batch with ``image_<modality>`` inputs (N, V x C, H, W).

    Raises:
        NonFiniteError: Naming the step, the non-finite terms and, for every
            modality, whether its input or its embeddings are non-finite.
    """
    values = [v for v in outputs.values() if isinstance(v, Tensor)]
    if _all_finite(values):
        return
    bad_terms = [
        f'{name} = {float(v.detach().float().mean()) if v.numel() else v}'
        for name, v in outputs.items()
        if isinstance(v, Tensor) and not bool(torch.isfinite(v.detach()).all())
    ]
    causes = []
    advice = ADVICE
    for modality, views in embeddings.items():
        image = batch.get(f'image_{modality}')
        if isinstance(image, Tensor) and not _all_finite([image]):
            advice = INPUT_ADVICE
            causes.append(
                f"modality '{modality}': input image_{modality} holds "
                f'{_describe(image)}'
            )
        elif not _all_finite(views):
            causes.append(
                f"modality '{modality}': embeddings hold "
                f'{_describe(torch.stack([v.detach() for v in views]))} '
                '(inputs finite: the weights or activations diverged)'
            )
    if not causes:
        causes.append('inputs and embeddings of every modality are finite')
    raise NonFiniteError(
        f'non-finite training loss at step {step}: {", ".join(bad_terms)}; '
        f'{"; ".join(causes)}. Training stopped before the optimizer step. ' + advice
    )


def check_finite_checkpoint(checkpoint: Mapping[str, Any], step: int) -> None:
    """Refuse to save a checkpoint whose weights hold NaN or infinite values.

    Args:
        checkpoint: The dictionary Lightning is about to write
            (``state_dict`` holds the module's tensors).
        step: The trainer's global step, for the message.

    Raises:
        NonFiniteError: Naming the first non-finite tensors; nothing is written.
    """
    state = checkpoint.get('state_dict', {})
    tensors = {
        k: v
        for k, v in state.items()
        if isinstance(v, Tensor) and (v.is_floating_point() or v.is_complex())
    }
    if _all_finite(tensors.values()):
        return
    bad = [k for k, v in tensors.items() if not bool(torch.isfinite(v).all())]
    shown = ', '.join(f'{k} ({_describe(tensors[k])})' for k in bad[:3])
    more = f' and {len(bad) - 3} more' if len(bad) > 3 else ''
    raise NonFiniteError(
        f'refusing to write a checkpoint at step {step}: {len(bad)} weight '
        f'tensor(s) are not finite: {shown}{more}. The training diverged in an '
        'optimizer step. ' + ADVICE
    )


def check_batch_size(batch_size: int, task: str) -> None:
    """Refuse training batches of fewer than two samples.

    The projectors' batch normalisation and the batch-statistics losses
    (cross-correlation, contrastive) need at least two samples per batch and
    process; with one, PyTorch fails deep inside BatchNorm with "Expected more
    than 1 value per channel".

    Args:
        batch_size: Samples in the batch on this process.
        task: Task class name, for the message.

    Raises:
        ValueError: If ``batch_size`` < 2, naming the data module argument.
    """
    if batch_size < 2:
        raise ValueError(
            f'{task} got a training batch of {batch_size} sample(s); its batch '
            'normalisation and loss need at least 2 per batch and device: set '
            "the data module's batch_size to 2 or more"
        )
