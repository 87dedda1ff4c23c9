"""DeCUR: decoupling common and unique representations (ECCV 2024)."""

from collections.abc import Mapping
from typing import Any, Literal

from torch import Tensor

from ..losses.common import check_non_negative
from ..losses.decur import DeCURLoss
from .base import MultimodalSSLTask, check_projector_dims


class DeCURTask(MultimodalSSLTask):
    """Multimodal self-supervised pretraining with DeCUR.

    Each modality has its own encoder and projector; two augmented views per
    modality give the intra-modal Barlow Twins terms, and view 1 of both modalities
    gives the cross-modal terms, split into ``common_dim`` common dimensions
    (aligned) and K - ``common_dim`` unique ones (decorrelated).

    Where the defaults come from (FACTS B §1.3, §2.2, §6.1-6.2); they mix scripts,
    so no single reference run uses all of them:

    * S1 + S2, 8192-8192-8192 projector, 7168 common dimensions, lambda 0.0051,
      the reference loss weighting, 224 px crops: every SSL4EO-S12 script (main
      and decur-old branches).
    * ResNet-50 encoders, random initialisation (``weights=None``): the decur-old
      RN50 run that produced the released RN50 SSL4EO-S12 weights (main-branch
      scripts start from ImageNet, ``weights=True``). That run used LARS, lr 0.2
      (weights) / 0.0048 (biases, norms), weight decay 1e-6, 100 epochs
      (``conf/decur_ssl4eo_s12_rn50.yaml``).
    * AdamW, lr 1e-4 for all parameters, weight decay 0.01 applied to all of them
      (``decay_biases`` resolves to True for AdamW): the main-branch RN50-RDA and
      ViT-S/16 scripts. The main-branch plain RN50 script asked for lr 0.05 /
      0.0048 and weight decay 1e-6, which ran as AdamW because of the
      optimizer-selection bug (FACTS B §6.1.4).
    * No warm-up, cosine schedule: every script; but the default steps the cosine
      after every optimizer step, the scripts once per epoch
      (``lr_schedule: {interval: epoch}`` reproduces them exactly).
    * One projector per modality: the paper; the reference code shared one
      (``shared_projector=True``).

    Batch size and epochs belong to the data module and the Trainer. All other
    arguments are those of :class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`.

    Logged: ``train_loss`` and its components ``train_intra_<m1>``,
    ``train_intra_<m2>``, ``train_common``, ``train_unique``; collapse monitors
    ``train_std_<m>`` (std of L2-normalised embeddings, ≈ 1/sqrt(K) when
    healthy, 0 when collapsed), ``train_common_diag`` (mean diagonal of the common
    block of the cross-modal correlation, rises to 1) and ``train_unique_diag``
    (same for the unique block, should stay near 0).

    Reference: https://arxiv.org/abs/2309.05300
    """

    def __init__(
        self,
        common_dim: int = 7168,
        lambd: float = 0.0051,
        loss_weighting: Literal['reference', 'sum'] = 'reference',
        **kwargs: Any,
    ) -> None:
        """Initialize a new DeCURTask instance.

        Args:
            common_dim: Number of common dimensions, 0 ≤ common_dim ≤ K (7168 of
                8192 for SAR/optical, 6144 for RGB/DEM and RGB/depth).
            lambd: Weight of the off-diagonal terms, ≥ 0.
            loss_weighting: ``'reference'``: (intra1 + intra2 + (common +
                unique)/2)/3, as the released checkpoints were trained;
                ``'sum'``: the paper's plain sum.
            **kwargs: Arguments of
                :class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`.

        Raises:
            ValueError: If ``projector_dims`` is empty or not positive, if
                ``common_dim`` is outside [0, K], or if ``lambd`` is negative.
        """
        dims = check_projector_dims(kwargs.get('projector_dims', (8192, 8192, 8192)))
        check_non_negative(lambd=lambd)
        if not 0 <= common_dim <= int(dims[-1]):
            raise ValueError(
                f'common_dim must be in [0, K] = [0, {dims[-1]}] for the projector '
                f'output size K, got {common_dim}'
            )
        super().__init__(**kwargs)

    def configure_losses(self) -> None:
        """Build the DeCUR loss."""
        self.criterion = DeCURLoss(
            common_dim=self.hparams['common_dim'],
            lambd=self.hparams['lambd'],
            gather_distributed=True,
            weighting=self.hparams['loss_weighting'],
        )

    def compute_loss(self, embeddings: Mapping[str, list[Tensor]]) -> dict[str, Tensor]:
        """DeCUR loss and its logged components.

        Args:
            embeddings: Two embeddings (N, K) per modality.

        Returns:
            ``loss``, the four terms and the two cross-correlation monitors.
        """
        m1, m2 = self.modalities
        (z1_1, z1_2), (z2_1, z2_2) = embeddings[m1], embeddings[m2]
        out = self.criterion.components(z1_1, z1_2, z2_1, z2_2)
        return {
            'loss': out.total,
            f'intra_{m1}': out.intra1.detach(),
            f'intra_{m2}': out.intra2.detach(),
            'common': out.common.detach(),
            'unique': out.unique.detach(),
            'common_diag': out.common_diag,
            'unique_diag': out.unique_diag,
        }
