"""Pieces shared by every loss: argument checks and the global-batch preamble."""

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .distributed import gather_batch, is_distributed


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


def check_temperature(temperature: float) -> None:
    """Raise ``ValueError`` unless a softmax temperature is > 0.

    Args:
        temperature: Temperature τ of a contrastive loss.

    Raises:
        ValueError: If ``temperature`` is not positive.
    """
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``.

    Args:
        name: Argument name, for the message.
        value: The value given.
        choices: The accepted values.

    Raises:
        ValueError: Listing the accepted values, e.g. ``method must be 'auto',
            'gram' or 'direct', got 'fast'``.
    """
    if value not in choices:
        quoted = [repr(c) for c in choices]
        listed = ', '.join(quoted[:-1]) + f' or {quoted[-1]}'
        raise ValueError(f'{name} must be {listed}, got {value!r}')


def check_embeddings(named: Mapping[str, Tensor]) -> None:
    """Raise ``ValueError`` unless every embedding is (N, K) of one shape.

    Args:
        named: Embeddings by the name the messages use, e.g. ``{'z1': ...,
            'z2': ...}``.

    Raises:
        ValueError: Naming the first input that is not 2-D, or the shapes if
            they differ.
    """
    for name, z in named.items():
        if z.ndim != 2:
            raise ValueError(
                f'{name} must have shape (N, K), got {tuple(z.shape)} ({z.ndim}-D)'
            )
    shapes = {name: tuple(z.shape) for name, z in named.items()}
    if len(set(shapes.values())) > 1:
        if len(shapes) == 2:
            (a, shape_a), (b, shape_b) = shapes.items()
            raise ValueError(
                f'{a} and {b} must have the same shape, got {shape_a} and {shape_b}'
            )
        raise ValueError(f'all embeddings must have the same shape, got {shapes}')


@contextmanager
def global_batch(
    named: Mapping[str, Tensor], gather_distributed: bool, what: str
) -> Iterator[tuple[Tensor, ...]]:
    """Check, gather, upcast, compute without autocast: the preamble of every loss.

    Every loss is computed in full on every rank from the gathered global batch,
    so each rank holds the exact global loss value, and
    :func:`~torchgeo_decur.losses.gather_batch`'s backward makes the DDP-averaged
    gradients equal those of one process with the whole batch. Statistics of wide
    embeddings do not survive bf16/fp16 accumulation, so half-precision inputs
    are upcast to float32 and the block runs with autocast off.

    Args:
        named: Embeddings (N, K) by the name error messages use; checked with
            :func:`check_embeddings`.
        gather_distributed: Concatenate the batches of all ranks (rank order);
            nothing is copied without a process group.
        what: Name of the loss, for the error message.

    Yields:
        The (W·N, K) global batches in the order given, in float32 at least.

    Raises:
        ValueError: For malformed embeddings or a global batch below 2 samples.
    """
    check_embeddings(named)
    out = tuple(named.values())
    if gather_distributed and is_distributed():
        # One collective for all embeddings.
        out = gather_batch(torch.stack(out, dim=1)).unbind(dim=1)
    n = out[0].shape[0]
    if n < 2:
        raise ValueError(
            f'{what} needs a (global) batch of at least 2 samples, got {n}'
        )
    out = tuple(
        z.float() if z.dtype in (torch.float16, torch.bfloat16) else z for z in out
    )
    with torch.autocast(out[0].device.type, enabled=False):
        yield out


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
