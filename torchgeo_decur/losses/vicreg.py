"""Cross-modal VICReg loss over the global batch.

For embeddings X (modality 1) and Y (modality 2) of N samples and K dimensions
(Bardes et al., 2022, https://arxiv.org/abs/2105.04906, and their code):

* invariance: ``mean((X − Y)²)`` over all N·K entries;
* variance: ``(mean_k relu(1 − S(X)_k) + mean_k relu(1 − S(Y)_k)) / 2`` with
  ``S_k = sqrt(Var_k + eps)``, the unbiased variance over the batch, eps = 1e-4;
* covariance: ``Σ_{i≠j} Cov(X)_ij² / K + Σ_{i≠j} Cov(Y)_ij² / K`` with
  ``Cov = (X − X̄)ᵀ (X − X̄) / (N − 1)``;
* total: ``25 · invariance + 25 · variance + 1 · covariance`` (default coefficients).

The three terms are lightly's ``invariance_loss``, ``variance_loss`` and
``covariance_loss`` (which implement exactly these formulas), applied to the gathered
global batch. lightly's :class:`~lightly.loss.VICRegLoss` module is not used because
its ``gather_distributed`` mode keeps the invariance term per rank (like the original
code), so ranks report different loss values, and because the task logs the three
terms separately. Here N is the GLOBAL batch in every term, fixing the DeCUR
reference baseline, which divides the covariance of the gathered features by the
per-GPU batch size.
"""

from typing import NamedTuple

from lightly.loss.vicreg_loss import covariance_loss, invariance_loss, variance_loss
from torch import Tensor

from .common import PairLoss, check_non_negative, check_positive, global_batch


class VICRegLossOutput(NamedTuple):
    """VICReg loss and its unweighted terms (scalars).

    Attributes:
        total: Weighted sum that is optimised.
        invariance: Mean squared difference of the paired embeddings.
        variance: Hinge on the per-dimension std, averaged over both modalities; 0
            when every dimension has std ≥ 1, 1 when the embeddings collapse.
        covariance: Sum over both modalities of the squared off-diagonal covariances
            divided by K.
    """

    total: Tensor
    invariance: Tensor
    variance: Tensor
    covariance: Tensor


def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    gather_distributed: bool = False,
    eps: float = 1e-4,
) -> VICRegLossOutput:
    """Compute the cross-modal VICReg loss.

    Args:
        z1: Modality-1 embeddings (N, K).
        z2: Modality-2 embeddings (N, K), row i pairs with row i of ``z1``.
        sim_coeff: Weight of the invariance term.
        std_coeff: Weight of the variance term.
        cov_coeff: Weight of the covariance term.
        gather_distributed: Compute every term over the global batch of all ranks
            (every rank then holds the exact global loss).
        eps: Added to the variance before the square root.

    Returns:
        The loss and its terms; see :class:`VICRegLossOutput`.

    Raises:
        ValueError: For malformed inputs, a global batch below 2, a negative
            weight or a non-positive ``eps``.
    """
    loss = VICRegLoss(sim_coeff, std_coeff, cov_coeff, gather_distributed, eps)
    return loss.components(z1, z2)


class VICRegLoss(PairLoss):
    """Cross-modal VICReg loss as a module; see :func:`vicreg_loss`."""

    def __init__(
        self,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        gather_distributed: bool = False,
        eps: float = 1e-4,
    ) -> None:
        """Initialize a new VICRegLoss instance.

        Args:
            sim_coeff: Weight of the invariance term.
            std_coeff: Weight of the variance term.
            cov_coeff: Weight of the covariance term.
            gather_distributed: Compute the terms over the global batch.
            eps: Added to the variance before the square root.

        Raises:
            ValueError: If a weight is negative or ``eps`` is not positive.
        """
        super().__init__()
        check_non_negative(
            sim_coeff=sim_coeff, std_coeff=std_coeff, cov_coeff=cov_coeff
        )
        check_positive(eps=eps)
        self.sim_coeff = sim_coeff
        self.std_coeff = std_coeff
        self.cov_coeff = cov_coeff
        self.gather_distributed = gather_distributed
        self.eps = eps

    def components(self, z1: Tensor, z2: Tensor) -> VICRegLossOutput:
        """Compute the loss and its terms.

        Args:
            z1: Modality-1 embeddings (N, K).
            z2: Modality-2 embeddings (N, K).

        Returns:
            See :class:`VICRegLossOutput`.
        """
        named = {'z1': z1, 'z2': z2}
        with global_batch(named, self.gather_distributed, 'the VICReg loss') as (x, y):
            invariance = invariance_loss(x, y)
            variance = (variance_loss(x, self.eps) + variance_loss(y, self.eps)) / 2
            covariance = covariance_loss(x) + covariance_loss(y)
            total = (
                self.sim_coeff * invariance
                + self.std_coeff * variance
                + self.cov_coeff * covariance
            )
        return VICRegLossOutput(total, invariance, variance, covariance)
