"""Multimodal baselines of the DeCUR paper: SimCLR, CLIP, Barlow Twins, VICReg.

Every baseline shares :class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`
(encoders, projectors, per-modality augmentation, optimiser, weights) and differs only
in its loss. As in the DeCUR reference (``pretrain_mm.py`` calls
``model(y1_1, y2_1)``), each sample gives ONE augmented view per modality and the
loss compares modality 1 with modality 2 of the same sample (cross-modal positives);
there are no intra-modal terms. Use the data module with ``views: 1``; with two stored
views only the first is used.

The published baseline code does not run (missing imports, undefined arguments,
4 GPUs hard-coded); these tasks are written from the methods' papers, with the
distributed fixes of the DeCUR loss (every statistic over the global batch).
"""

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from ..losses import BarlowTwinsLoss, CLIPLoss, NTXentLoss, VICRegLoss
from .base import MultimodalSSLTask


class CrossModalSSLTask(MultimodalSSLTask):
    """Base of the single-view cross-modal baselines.

    Subclasses build ``self.criterion`` in :meth:`configure_losses`; its
    ``components(z1, z2)`` returns a NamedTuple whose first field is the loss and
    whose other fields are logged as ``train_<field>``.
    """

    num_views = 1
    max_modalities = 2
    criterion: NTXentLoss | CLIPLoss | BarlowTwinsLoss | VICRegLoss

    @abstractmethod
    def configure_losses(self) -> None:
        """Build ``self.criterion``."""

    def compute_loss(self, embeddings: Mapping[str, list[Tensor]]) -> dict[str, Tensor]:
        """Cross-modal loss between the single view of both modalities.

        Args:
            embeddings: One embedding (N, K) per modality.

        Returns:
            ``loss`` and the criterion's monitors (detached).
        """
        m1, m2 = self.modalities
        out = self.criterion.components(embeddings[m1][0], embeddings[m2][0])
        total, *monitors = out
        names = out._fields[1:]
        logged = {n: v.detach() for n, v in zip(names, monitors, strict=True)}
        return {'loss': total, **logged}


class MultimodalSimCLRTask(CrossModalSSLTask):
    """Cross-modal SimCLR: NT-Xent over the 2N embeddings of both modalities.

    For a batch of N samples, each of the 2N L2-normalised embeddings has the other
    modality's embedding of its sample as positive and the other 2N - 2 embeddings
    (both modalities) as negatives; the negatives come from the global batch of
    all ranks.

    Defaults: projector 512-128 as in the reference baseline (there with biased
    Linear layers and a final BatchNorm), temperature 0.1 (SimCLR paper). The
    reference baseline used τ = 1 (``temperature: 1.0`` reproduces it).

    Logged: ``train_loss``; monitors ``train_positive_similarity``,
    ``train_negative_similarity`` (cosines; both near 1 means collapse),
    ``train_top1`` (cross-modal retrieval accuracy in the batch) and the base's
    ``train_std_<m>``.

    Reference: https://arxiv.org/abs/2002.05709
    """

    def __init__(
        self,
        temperature: float = 0.1,
        projector_dims: Sequence[int] = (512, 128),
        **kwargs: Any,
    ) -> None:
        """Initialize a new MultimodalSimCLRTask instance.

        Args:
            temperature: Softmax temperature τ > 0.
            projector_dims: Output sizes of the projector's Linear layers.
            **kwargs: Arguments of
                :class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`.

        Raises:
            ValueError: If ``temperature`` is not positive.
        """
        if not temperature > 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = float(temperature)
        super().__init__(projector_dims=projector_dims, **kwargs)

    def configure_losses(self) -> None:
        """Build the NT-Xent loss."""
        self.criterion = NTXentLoss(
            temperature=self.temperature,
            gather_distributed=True,
        )


class MultimodalCLIPTask(CrossModalSSLTask):
    """CLIP: symmetric InfoNCE between modality 1 and modality 2.

    Logits are the cosine similarities of the N modality-1 embeddings with the N
    modality-2 embeddings divided by τ; the loss averages the cross-entropy over
    rows (1 → 2) and columns (2 → 1). Negatives come from the other modality only,
    from the global batch of all ranks. τ is learnable by default
    (initialised at 0.07, 1/τ capped at 100, as in CLIP) and logged as
    ``train_temperature``.

    The reference baseline used the 1 → 2 direction only with a fixed τ = 1; this
    task is the symmetric loss of the CLIP paper (``learnable_temperature: false``
    and ``temperature: 1.0`` fix τ like the reference).

    Logged: as :class:`MultimodalSimCLRTask`, plus ``train_temperature``.

    Reference: https://arxiv.org/abs/2103.00020
    """

    criterion: CLIPLoss

    def __init__(
        self,
        temperature: float = 0.07,
        learnable_temperature: bool = True,
        max_logit_scale: float = 100.0,
        projector_dims: Sequence[int] = (512, 128),
        **kwargs: Any,
    ) -> None:
        """Initialize a new MultimodalCLIPTask instance.

        Args:
            temperature: Initial (or fixed) temperature τ > 0.
            learnable_temperature: Learn τ (as log(1/τ), no weight decay, learning
                rate ``optimizer_options['lr_biases']``).
            max_logit_scale: Upper bound of 1/τ.
            projector_dims: Output sizes of the projector's Linear layers.
            **kwargs: Arguments of
                :class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`.

        Raises:
            ValueError: If ``temperature`` is not positive or 1/``temperature``
                exceeds ``max_logit_scale``.
        """
        self.temperature = float(temperature)
        self.learnable_temperature = bool(learnable_temperature)
        self.max_logit_scale = float(max_logit_scale)
        super().__init__(projector_dims=projector_dims, **kwargs)

    def configure_losses(self) -> None:
        """Build the CLIP loss (holding the learnable temperature)."""
        self.criterion = CLIPLoss(
            temperature=self.temperature,
            learnable_temperature=self.learnable_temperature,
            max_logit_scale=self.max_logit_scale,
            gather_distributed=True,
        )

    def compute_loss(self, embeddings: Mapping[str, list[Tensor]]) -> dict[str, Tensor]:
        """CLIP loss, its monitors and the current temperature.

        Args:
            embeddings: One embedding (N, K) per modality.

        Returns:
            ``loss``, the contrastive monitors and ``temperature``.
        """
        return {
            **super().compute_loss(embeddings),
            'temperature': self.criterion.temperature,
        }


class MultimodalBarlowTwinsTask(CrossModalSSLTask):
    """Cross-modal Barlow Twins: the cross-correlation of modality 1 and 2 → identity.

    The K x K cross-correlation of the batch-normalised embeddings (global batch) of
    one view of each modality is driven to the identity, off-diagonals weighted by
    ``lambd`` — the DeCUR loss without intra-modal terms and without decoupling
    (all K dimensions common).

    Defaults: projector 8192-8192-8192 and λ = 0.0051, as DeCUR.

    Logged: ``train_loss``; monitors ``train_cross_diag`` (mean diagonal of the
    cross-correlation, rises towards 1) and the base's ``train_std_<m>``.

    Reference: https://arxiv.org/abs/2103.03230
    """

    def __init__(
        self,
        lambd: float = 0.0051,
        **kwargs: Any,
    ) -> None:
        """Initialize a new MultimodalBarlowTwinsTask instance.

        Args:
            lambd: Weight of the off-diagonal terms.
            **kwargs: Arguments of
                :class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`.
        """
        self.lambd = float(lambd)
        super().__init__(**kwargs)

    def configure_losses(self) -> None:
        """Build the Barlow Twins loss."""
        self.criterion = BarlowTwinsLoss(
            lambd=self.lambd,
            gather_distributed=True,
        )


class MultimodalVICRegTask(CrossModalSSLTask):
    """Cross-modal VICReg: invariance between the modalities, variance, covariance.

    Terms (global batch, see :func:`~torchgeo_decur.losses.vicreg_loss`): mean
    squared difference of the modality-1 and modality-2 embeddings, the std hinge
    averaged over both modalities and the off-diagonal covariance summed over both,
    weighted 25 / 25 / 1 as in VICReg.

    Defaults: projector 8192-8192-8192 as in VICReg and the reference baseline.

    Logged: ``train_loss``; its terms ``train_invariance``, ``train_variance`` (a
    collapse monitor itself: 1 when every dimension is constant) and
    ``train_covariance``; and the base's ``train_std_<m>``.

    Reference: https://arxiv.org/abs/2105.04906
    """

    def __init__(
        self,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        **kwargs: Any,
    ) -> None:
        """Initialize a new MultimodalVICRegTask instance.

        Args:
            sim_coeff: Weight of the invariance term.
            std_coeff: Weight of the variance term.
            cov_coeff: Weight of the covariance term.
            **kwargs: Arguments of
                :class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`.
        """
        self.sim_coeff = float(sim_coeff)
        self.std_coeff = float(std_coeff)
        self.cov_coeff = float(cov_coeff)
        super().__init__(**kwargs)

    def configure_losses(self) -> None:
        """Build the VICReg loss."""
        self.criterion = VICRegLoss(
            sim_coeff=self.sim_coeff,
            std_coeff=self.std_coeff,
            cov_coeff=self.cov_coeff,
            gather_distributed=True,
        )
