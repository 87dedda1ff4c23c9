"""Output type and collapse monitors shared by the contrastive losses."""

from typing import NamedTuple

import torch
from torch import Tensor


class ContrastiveLossOutput(NamedTuple):
    """A contrastive loss with its collapse monitors (all scalars).

    The monitors are computed without gradient on the global batch of
    L2-normalised embeddings, modality 1 (rows) against modality 2 (columns).

    Attributes:
        total: The loss that is optimised.
        positive_similarity: Mean cosine similarity of the cross-modal positive
            pairs (rises towards 1 during training).
        negative_similarity: Mean cosine similarity of the cross-modal negative pairs
            (stays well below the positives; both near 1 means collapse).
        top1: Fraction of modality-1 samples whose most similar modality-2 sample
            is their own partner (cross-modal retrieval accuracy; chance is 1/N).
    """

    total: Tensor
    positive_similarity: Tensor
    negative_similarity: Tensor
    top1: Tensor


@torch.no_grad()
def contrastive_monitors(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Positive/negative similarity and retrieval accuracy of paired embeddings.

    Args:
        a: L2-normalised embeddings (N, K); row i pairs with row i of ``b``.
        b: L2-normalised embeddings (N, K).

    Returns:
        Mean positive cosine, mean negative cosine (0 if N = 1) and top-1
        retrieval accuracy of ``a`` → ``b``.
    """
    sim = a @ b.T
    n = sim.shape[0]
    positive = torch.diagonal(sim).mean()
    if n > 1:
        negative = (sim.sum() - torch.diagonal(sim).sum()) / (n * (n - 1))
    else:
        negative = sim.new_zeros(())
    top1 = (sim.argmax(dim=1) == torch.arange(n, device=sim.device)).float().mean()
    return positive, negative, top1
