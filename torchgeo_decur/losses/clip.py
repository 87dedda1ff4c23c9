"""Symmetric InfoNCE (CLIP) loss between two modalities over the global batch.

With L2-normalised embeddings ``a`` (modality 1) and ``b`` (modality 2) of N samples
and a logit scale s = 1/τ, the logits are ``s · a bᵀ`` (N x N) and the loss is the
mean of the cross-entropy of every row (modality 1 → 2) and of every column
(modality 2 → 1) against its own partner (Radford et al., 2021,
https://arxiv.org/abs/2103.00020). Unlike NT-Xent, negatives come from the other
modality only.

Written here because lightly has no CLIP loss. The DeCUR reference baseline
(``src/pretrain/models/clip.py``) uses the modality 1 → 2 direction only and a fixed
τ = 1; this module is the symmetric loss of the CLIP paper, with a fixed or learnable
temperature.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import PairLoss, check_temperature, global_batch
from .contrastive import ContrastiveLossOutput, contrastive_monitors


def clip_loss(
    z1: Tensor,
    z2: Tensor,
    logit_scale: Tensor | float,
    gather_distributed: bool = False,
) -> ContrastiveLossOutput:
    """Compute the symmetric InfoNCE loss and its monitors.

    The loss is evaluated in full on every rank from the gathered global batch, so
    every rank holds the exact global loss, the DDP-averaged encoder gradients
    equal those of one process with the whole batch (see
    :func:`~torchgeo_decur.losses.gather_batch`), and a learnable ``logit_scale``
    gets the same (global) gradient on every rank.

    Args:
        z1: Modality-1 embeddings (N, K).
        z2: Modality-2 embeddings (N, K), row i pairs with row i of ``z1``.
        logit_scale: Multiplier s = 1/τ of the cosine similarities (a scalar
            tensor to learn it).
        gather_distributed: Use the embeddings of all ranks as negatives.

    Returns:
        The loss and its collapse monitors; see :class:`ContrastiveLossOutput`.

    Raises:
        ValueError: For malformed inputs or a global batch below 2.
    """
    named = {'z1': z1, 'z2': z2}
    with global_batch(named, gather_distributed, 'the CLIP loss') as (a, b):
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        scale = torch.as_tensor(logit_scale, device=a.device).float()
        logits = scale * (a @ b.T)
        labels = torch.arange(a.shape[0], device=a.device)
        total = (
            F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)
        ) / 2
        monitors = contrastive_monitors(a.detach(), b.detach())
    return ContrastiveLossOutput(total, *monitors)


class CLIPLoss(PairLoss):
    """Symmetric InfoNCE with a fixed or learnable temperature.

    The learnable parameter is ``log_scale`` = log(1/τ), initialised from
    ``temperature``. As in CLIP (which starts at τ = 0.07 and caps 1/τ at 100) the
    parameter itself is clamped to log(``max_logit_scale``) before each use rather
    than its value inside the graph: a clamp in the graph has zero gradient once an
    optimiser step overshoots the cap, so τ could never grow again. Being
    0-dimensional, it gets the task's group of 0-D parameters (learning rate
    ``lr_biases``, never weight decay).
    """

    log_scale: Tensor

    def __init__(
        self,
        temperature: float = 0.07,
        learnable_temperature: bool = True,
        max_logit_scale: float = 100.0,
        gather_distributed: bool = False,
    ) -> None:
        """Initialize a new CLIPLoss instance.

        Args:
            temperature: Initial (or fixed) temperature τ > 0.
            learnable_temperature: Learn τ (as log(1/τ)) instead of fixing it.
            max_logit_scale: Upper bound of 1/τ while learning.
            gather_distributed: Contrast against the global batch of all ranks.

        Raises:
            ValueError: If ``temperature`` is not positive or 1/``temperature``
                exceeds ``max_logit_scale``.
        """
        super().__init__()
        check_temperature(temperature)
        if 1 / temperature > max_logit_scale:
            raise ValueError(
                f'1/temperature = {1 / temperature:g} exceeds max_logit_scale '
                f'{max_logit_scale:g}'
            )
        value = torch.tensor(math.log(1 / temperature))
        if learnable_temperature:
            self.log_scale = nn.Parameter(value)
        else:
            self.register_buffer('log_scale', value)
        self.max_log_scale = math.log(max_logit_scale)
        self.gather_distributed = gather_distributed

    @property
    def temperature(self) -> Tensor:
        """The current temperature τ (detached scalar)."""
        return torch.exp(-self.log_scale.detach().clamp(max=self.max_log_scale))

    def components(self, z1: Tensor, z2: Tensor) -> ContrastiveLossOutput:
        """Compute the loss and its monitors.

        Args:
            z1: Modality-1 embeddings (N, K).
            z2: Modality-2 embeddings (N, K).

        Returns:
            See :class:`ContrastiveLossOutput`.
        """
        with torch.no_grad():
            self.log_scale.clamp_(max=self.max_log_scale)
        return clip_loss(z1, z2, self.log_scale.exp(), self.gather_distributed)
