"""Cross-modal Barlow Twins loss over the global batch.

``C = Âᵀ B̂ / N`` is the K x K cross-correlation of the batch-normalised embeddings
of modality 1 (A) and modality 2 (B) — mean 0 and biased std 1 over the GLOBAL batch
of N samples — and the loss is ``Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²`` (Zbontar et
al., 2021, https://arxiv.org/abs/2103.03230; the cross-modal use is the DeCUR
paper's "BarlowTwins (cross-modal)" baseline, one view per modality).

This reuses the DeCUR loss's Barlow Twins primitives (one implementation of the
objective in the package; the Gram form avoids K x K matrices for N < K) rather than
lightly's :class:`~lightly.loss.BarlowTwinsLoss`, whose ``gather_distributed`` mode
batch-normalises each rank's embeddings with that rank's own statistics and then
averages the per-rank matrices — not the correlation matrix of the global batch, so
results would depend on how the batch is split over GPUs.
"""

from typing import NamedTuple

from torch import Tensor

from .common import (
    PairLoss,
    check_choice,
    check_non_negative,
    check_positive,
    global_batch,
)
from .decur import (
    METHODS,
    Method,
    barlow_objective,
    batch_standardize,
    correlation_stats,
)


class BarlowTwinsLossOutput(NamedTuple):
    """Cross-modal Barlow Twins loss and its monitor (scalars).

    Attributes:
        total: The loss that is optimised.
        cross_diag: Mean diagonal of the cross-modal correlation matrix, detached:
            rises towards 1 as the modalities align (stays near 0 when the
            embeddings collapse to a constant).
    """

    total: Tensor
    cross_diag: Tensor


def barlow_twins_loss(
    z1: Tensor,
    z2: Tensor,
    lambd: float = 0.0051,
    gather_distributed: bool = False,
    eps: float = 1e-5,
    method: Method = 'auto',
) -> BarlowTwinsLossOutput:
    """Compute the cross-modal Barlow Twins loss.

    Args:
        z1: Modality-1 embeddings (N, K).
        z2: Modality-2 embeddings (N, K), row i pairs with row i of ``z1``.
        lambd: Weight λ of the off-diagonal (redundancy reduction) term.
        gather_distributed: Normalise and correlate over the global batch of all
            ranks (every rank then computes the exact global loss).
        eps: Added to the batch variance before normalising (BatchNorm's 1e-5).
        method: ``'gram'`` (N x N Gram matrices), ``'direct'`` (K x K matrix) or
            ``'auto'`` (Gram when N < K); all give the same value.

    Returns:
        The loss and its monitor; see :class:`BarlowTwinsLossOutput`.

    Raises:
        ValueError: For malformed inputs, a global batch below 2, a negative
            ``lambd``, a non-positive ``eps`` or an unknown ``method``.
    """
    return BarlowTwinsLoss(lambd, gather_distributed, eps, method).components(z1, z2)


class BarlowTwinsLoss(PairLoss):
    """Cross-modal Barlow Twins loss as a module; see :func:`barlow_twins_loss`."""

    def __init__(
        self,
        lambd: float = 0.0051,
        gather_distributed: bool = False,
        eps: float = 1e-5,
        method: Method = 'auto',
    ) -> None:
        """Initialize a new BarlowTwinsLoss instance.

        Args:
            lambd: Weight of the off-diagonal term.
            gather_distributed: Normalise and correlate over the global batch.
            eps: Added to the batch variance before normalising.
            method: ``'auto'``, ``'gram'`` or ``'direct'``.

        Raises:
            ValueError: If ``lambd`` is negative, ``eps`` is not positive or
                ``method`` is unknown.
        """
        super().__init__()
        check_non_negative(lambd=lambd)
        check_positive(eps=eps)
        check_choice('method', method, METHODS)
        self.lambd = lambd
        self.gather_distributed = gather_distributed
        self.eps = eps
        self.method: Method = method

    def components(self, z1: Tensor, z2: Tensor) -> BarlowTwinsLossOutput:
        """Compute the loss and its monitor.

        Args:
            z1: Modality-1 embeddings (N, K).
            z2: Modality-2 embeddings (N, K).

        Returns:
            See :class:`BarlowTwinsLossOutput`.
        """
        named, what = {'z1': z1, 'z2': z2}, 'the Barlow Twins loss'
        with global_batch(named, self.gather_distributed, what) as (a, b):
            a, b = batch_standardize(a, self.eps), batch_standardize(b, self.eps)
            diag, sq_fro = correlation_stats(a, b, self.method)
            total = barlow_objective(sq_fro, diag, 1.0, self.lambd)
        return BarlowTwinsLossOutput(total, diag.detach().mean())
