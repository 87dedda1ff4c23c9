"""Differentiable gathering of embeddings across distributed ranks."""

import torch
from lightly.utils import dist as lightly_dist
from torch import Tensor


def is_distributed() -> bool:
    """Whether a default process group with more than one rank is active.

    Returns:
        True when ``torch.distributed`` is initialised with a world size above 1.
    """
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def gather_batch(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along the batch axis, keeping gradients.

    The backward pass sums the incoming gradients over ranks and returns this rank's
    slice (lightly's :class:`~lightly.utils.dist.GatherLayer`). Because every rank
    then computes the same global loss, each rank's gradient is ``W`` times the
    gradient of that loss with respect to its own samples, and DDP's averaging over
    ``W`` ranks recovers exactly the single-process gradient of a ``W * N`` batch.

    Args:
        x: Local tensor of shape (N, ...).

    Returns:
        Tensor of shape (W * N, ...) in rank order, or ``x`` itself when not
        running distributed.
    """
    if not is_distributed():
        return x
    return torch.cat(lightly_dist.gather(x), dim=0)
