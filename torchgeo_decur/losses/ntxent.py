"""Cross-modal NT-Xent (SimCLR) loss over the global batch.

With embeddings ``z1`` (modality 1) and ``z2`` (modality 2) of N samples, the 2N
L2-normalised embeddings are contrasted: each one's positive is the other modality's
embedding of the same sample, and its negatives are the other 2N - 2 embeddings of
both modalities. The loss is the mean cross-entropy over all 2N anchors of the
cosine similarities divided by a temperature (Chen et al., 2020,
https://arxiv.org/abs/2002.05709; the cross-modal use is the DeCUR paper's
"SimCLR-cross" baseline).
"""

import torch.nn.functional as F
from lightly.loss import NTXentLoss as LightlyNTXentLoss
from torch import Tensor

from .common import PairLoss, check_temperature, global_batch
from .contrastive import ContrastiveLossOutput, contrastive_monitors


def ntxent_loss(
    z1: Tensor, z2: Tensor, temperature: float = 0.1, gather_distributed: bool = False
) -> ContrastiveLossOutput:
    """Compute the cross-modal NT-Xent loss and its monitors.

    The formula is lightly's :class:`~lightly.loss.NTXentLoss` (without memory
    bank), applied to the gathered global batch. lightly's own
    ``gather_distributed=True`` mode is not used: it evaluates only this rank's
    2N anchors against the gathered candidates, so each rank returns a different
    partial loss (only their mean is the global loss). Gathering first and
    evaluating all 2·W·N anchors on every rank gives every rank the exact global
    loss, for a cost (2WN)² K that is negligible next to the encoders.

    Args:
        z1: Modality-1 embeddings (N, K).
        z2: Modality-2 embeddings (N, K), row i pairs with row i of ``z1``.
        temperature: Softmax temperature τ (> 0) of the cosine similarities.
        gather_distributed: Use the embeddings of all ranks as negatives (the
            global batch of W·N pairs).

    Returns:
        The loss and its collapse monitors; see :class:`ContrastiveLossOutput`.

    Raises:
        ValueError: For malformed inputs, a global batch below 2 or τ ≤ 0.
    """
    return NTXentLoss(temperature, gather_distributed).components(z1, z2)


class NTXentLoss(PairLoss):
    """Cross-modal NT-Xent loss as a module; see :func:`ntxent_loss`."""

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False):
        """Initialize a new NTXentLoss instance.

        Args:
            temperature: Softmax temperature τ (> 0).
            gather_distributed: Contrast against the global batch of all ranks.

        Raises:
            ValueError: If ``temperature`` is not positive.
        """
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def components(self, z1: Tensor, z2: Tensor) -> ContrastiveLossOutput:
        """Compute the loss and its monitors.

        Args:
            z1: Modality-1 embeddings (N, K).
            z2: Modality-2 embeddings (N, K).

        Returns:
            See :class:`ContrastiveLossOutput`.
        """
        named = {'z1': z1, 'z2': z2}
        with global_batch(named, self.gather_distributed, 'the NT-Xent loss') as (a, b):
            total = LightlyNTXentLoss(temperature=self.temperature)(a, b)
            monitors = contrastive_monitors(
                F.normalize(a.detach(), dim=1), F.normalize(b.detach(), dim=1)
            )
        return ContrastiveLossOutput(total, *monitors)
