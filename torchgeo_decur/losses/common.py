"""Pieces shared by the two-embedding losses (baselines)."""

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .distributed import gather_batch


def check_pair(z_a: Tensor, z_b: Tensor, names: tuple[str, str] = ('z1', 'z2')) -> None:
    """Raise ``ValueError`` unless both embeddings are (N, K) of the same shape.

    Args:
        z_a: First embedding batch.
        z_b: Second embedding batch.
        names: Names used in the error message.

    Raises:
        ValueError: If an input is not 2-D or the shapes differ.
    """
    for name, z in zip(names, (z_a, z_b), strict=True):
        if z.ndim != 2:
            raise ValueError(
                f'{name} must have shape (N, K), got {tuple(z.shape)} ({z.ndim}-D)'
            )
    if z_a.shape != z_b.shape:
        raise ValueError(
            f'{names[0]} and {names[1]} must have the same shape, got '
            f'{tuple(z_a.shape)} and {tuple(z_b.shape)}'
        )


def check_non_negative(**values: float) -> None:
    """Raise ``ValueError`` unless every value is finite and >= 0.

    For loss weights (a negative one turns a term into one the optimiser
    maximises, e.g. a negative VICReg variance weight rewards collapse) and
    optimiser settings (learning rates, weight decay, warm-up).

    Args:
        **values: Values by argument name.

    Raises:
        ValueError: Naming the first offending argument and its value.
    """
    for name, value in values.items():
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f'{name} must be finite and >= 0, got {value}')


def check_positive(**values: float) -> None:
    """Raise ``ValueError`` unless every value is finite and > 0.

    For variance guards (``eps``): with 0 a constant embedding column divides
    0 by 0.

    Args:
        **values: Values by argument name.

    Raises:
        ValueError: Naming the first offending argument and its value.
    """
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f'{name} must be finite and > 0, got {value}')


def gather_pair(
    z_a: Tensor,
    z_b: Tensor,
    gather_distributed: bool,
    min_batch: int = 2,
    what: str = 'the loss',
) -> tuple[Tensor, Tensor]:
    """Validate, gather (differentiably) and upcast a pair of embeddings.

    Every baseline loss is computed in full on every rank from the gathered global
    batch, so each rank holds the exact global loss value, and
    :func:`~torchgeo_decur.losses.gather_batch`'s backward makes the DDP-averaged
    gradients equal those of one process with the whole batch.

    Args:
        z_a: Embeddings (N, K), e.g. of modality 1.
        z_b: Embeddings (N, K) of the positives of ``z_a`` (row i pairs with row i).
        gather_distributed: Concatenate the batches of all ranks (rank order).
        min_batch: Smallest global batch the loss is defined for.
        what: Name of the loss for error messages.

    Returns:
        ``(a, b)``: the (W·N, K) global batches, in float32 at least (half
        precision does not keep the statistics of wide embeddings).

    Raises:
        ValueError: For malformed inputs or a global batch below ``min_batch``.
    """
    check_pair(z_a, z_b)
    stacked = torch.stack([z_a, z_b], dim=1)  # N x 2 x K: one collective call
    if gather_distributed:
        stacked = gather_batch(stacked)
    if stacked.shape[0] < min_batch:
        raise ValueError(
            f'{what} needs a (global) batch of at least {min_batch} samples, got '
            f'{stacked.shape[0]}'
        )
    if stacked.dtype in (torch.float16, torch.bfloat16):
        stacked = stacked.float()
    a, b = stacked.unbind(dim=1)
    return a, b


@contextmanager
def full_precision(x: Tensor) -> Iterator[None]:
    """Disable autocast on ``x``'s device inside the block.

    Args:
        x: Any tensor on the device the loss runs on.

    Yields:
        Nothing; the block runs without autocast.
    """
    with torch.autocast(x.device.type, enabled=False):
        yield


class PairLoss(nn.Module):
    """Base of the two-embedding losses.

    Subclasses implement :meth:`components`, which returns a NamedTuple whose first
    field is the loss to optimise and whose other fields are monitors;
    :meth:`forward` returns that first field.
    """

    def components(self, z1: Tensor, z2: Tensor) -> tuple[Tensor, ...]:
        """Compute the loss (first entry) and its monitors.

        Args:
            z1: Modality-1 embeddings (N, K).
            z2: Modality-2 embeddings (N, K), row i pairs with row i of ``z1``.

        Returns:
            A NamedTuple ``(total, *monitors)`` of scalars.
        """
        raise NotImplementedError

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Compute the scalar loss.

        Args:
            z1: Modality-1 embeddings (N, K).
            z2: Modality-2 embeddings (N, K).

        Returns:
            Scalar loss.
        """
        return self.components(z1, z2)[0]
