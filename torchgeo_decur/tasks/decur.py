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
    modality give the intra-modal Barlow Twins terms, and view 1 of two modalities
    gives the cross-modal terms, split into ``common_dim`` common dimensions
    (aligned) and K - ``common_dim`` unique ones (decorrelated).

    Any number M >= 2 of modalities: every modality has its intra term and every
    pair i < j its common and unique terms; the reference weighting averages them
    as (Σ_m intra_m + Σ_{i<j} (common_ij + unique_ij) / 2) / (M + M(M-1)/2), which
    for M = 2 is the released checkpoints' (intra1 + intra2 + (common +
    unique)/2)/3 (see :func:`~torchgeo_decur.losses.decur_loss_multi`).

    The defaults are the paper's SAR/optical settings: S1 + S2, an 8192-8192-8192
    projector with 7168 common dimensions, lambda 0.0051, the weighting the released
    checkpoints were trained with, 224 px crops, randomly initialised ResNet-50
    encoders with one projector each, and AdamW under a per-step cosine. Which
    published run each setting comes from, and the options that reproduce the
    authors' scripts exactly, are listed on the "Reproducing the paper" page of the
    documentation; ``conf/`` holds one config per published run.

    Batch size and epochs belong to the data module and the Trainer. All other
    arguments are those of :class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`.

    Logged: ``train_loss`` and its components ``train_intra_<m>`` per modality and
    ``train_common_<mi>_<mj>``, ``train_unique_<mi>_<mj>`` per pair; collapse
    monitors ``train_std_<m>`` (std of L2-normalised embeddings, ≈ 1/sqrt(K) when
    healthy, 0 when collapsed), ``train_common_diag_<mi>_<mj>`` (mean diagonal of
    the common block of the pair's cross-modal correlation, rises to 1) and
    ``train_unique_diag_<mi>_<mj>`` (same for the unique block, should stay near
    0). With two modalities the pair's values are also logged under the names
    ``train_common``, ``train_unique``, ``train_common_diag`` and
    ``train_unique_diag``.

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
        self.common_dim = int(common_dim)
        self.lambd = float(lambd)
        self.loss_weighting = loss_weighting
        super().__init__(**kwargs)

    def configure_losses(self) -> None:
        """Build the DeCUR loss."""
        self.criterion = DeCURLoss(
            common_dim=self.common_dim,
            lambd=self.lambd,
            gather_distributed=True,
            weighting=self.loss_weighting,
        )

    def compute_loss(self, embeddings: Mapping[str, list[Tensor]]) -> dict[str, Tensor]:
        """DeCUR loss and its logged components.

        Args:
            embeddings: Two embeddings (N, K) per modality.

        Returns:
            ``loss``, every term by modality name (``intra_<m>``,
            ``common_<mi>_<mj>``, ``unique_<mi>_<mj>``) and the per-pair
            cross-correlation monitors (``common_diag_<mi>_<mj>``,
            ``unique_diag_<mi>_<mj>``); with two modalities also the pair's terms
            and monitors under the names ``common``, ``unique``, ``common_diag``
            and ``unique_diag``.
        """
        names = self.modalities
        out = self.criterion.multimodal([embeddings[m][:2] for m in names])
        logged = {'loss': out.total}
        for m, term in zip(names, out.intra, strict=True):
            logged[f'intra_{m}'] = term.detach()
        for (i, j), term in out.common.items():
            pair = f'{names[i]}_{names[j]}'
            logged[f'common_{pair}'] = term.detach()
            logged[f'unique_{pair}'] = out.unique[i, j].detach()
            logged[f'common_diag_{pair}'] = out.common_diag[i, j]
            logged[f'unique_diag_{pair}'] = out.unique_diag[i, j]
        if len(names) == 2:
            logged['common'] = out.common[0, 1].detach()
            logged['unique'] = out.unique[0, 1].detach()
            logged['common_diag'] = out.common_diag[0, 1]
            logged['unique_diag'] = out.unique_diag[0, 1]
        return logged
