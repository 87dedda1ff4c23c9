"""DeCUR ResNet-50 and ResNet-50-RDA weights and their builders.

Builders follow torchgeo's convention (``builder(weights, **timm_kwargs)``) and are
registered with torchgeo on ``import torchgeo_decur`` (see :mod:`.registry`).
"""

import os
from typing import Any

from torch import nn

from .checkpoints import RDASemantics
from .weights import DeCURWeightsEnum, build_encoder, decur_weights


class DeCURResNet50_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR ResNet-50 weights (torchvision / timm ``resnet50`` keys).

    The SSL4EO-S12 files come from the older pipeline (branch ``decur-old``, no
    ImageNet initialisation); see the transforms for their uncertain Sentinel-2
    scaling. torchgeo's ``ResNet50_Weights.SENTINEL1_GRD_DECUR`` /
    ``SENTINEL2_ALL_DECUR`` re-host the two SSL4EO-S12 backbone files with other
    transforms (FACTS A §3.7).
    """

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = decur_weights(
        'rn50_ssl4eo-s12_joint_decur_ep100.pth',
        'resnet50',
        'SSL4EO-S12',
        ('ssl4eo_s1_old', 'ssl4eo_s2_old'),
    )
    SENTINEL1_GRD_SSL4EO_DECUR = decur_weights(
        'rn50_ssl4eo-s12_sar_decur_ep100.pth',
        'resnet50',
        'SSL4EO-S12',
        ('ssl4eo_s1_old',),
    )
    SENTINEL2_L1C_SSL4EO_DECUR = decur_weights(
        'rn50_ssl4eo-s12_ms_decur_ep100.pth',
        'resnet50',
        'SSL4EO-S12',
        ('ssl4eo_s2_old',),
    )
    RGB_DEM_GEONRW_DECUR = decur_weights(
        'rn50_geonrw_joint_decur_ep100.pth',
        'resnet50',
        'GeoNRW',
        ('geonrw_rgb', 'geonrw_dem'),
    )
    RGB_GEONRW_DECUR = decur_weights(
        'rn50_geonrw_rgb_decur_ep100.pth', 'resnet50', 'GeoNRW', ('geonrw_rgb',)
    )
    DEM_GEONRW_DECUR = decur_weights(
        'rn50_geonrw_dem_decur_ep100.pth', 'resnet50', 'GeoNRW', ('geonrw_dem',)
    )


class DeCURResNet50RDA_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR ResNet-50 with residual deformable attention (timm ``resnet50_rda``).

    Backbone-only files hold ``backbone.<ResNet keys>`` plus the attention blocks of
    their modality (``da1_*`` for SAR / RGB, ``da2_*`` for MS / DEM). For modality 2
    of the joint files, ``rda_semantics='transfer'`` (default) takes ``da2_*`` like
    those files and the authors' downstream code; ``'pretraining'`` takes ``da1_*``,
    which the pretraining forward actually used for both modalities (FACTS A §2.5).
    """

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = decur_weights(
        'rn50_rda_ssl4eo-s12_joint_decur_ep100.pth',
        'resnet50_rda',
        'SSL4EO-S12',
        ('ssl4eo_s1', 'ssl4eo_s2'),
    )
    SENTINEL1_GRD_SSL4EO_DECUR = decur_weights(
        'rn50_rda_ssl4eo-s12_sar_decur_ep100.pth',
        'resnet50_rda',
        'SSL4EO-S12',
        ('ssl4eo_s1',),
    )
    SENTINEL2_L1C_SSL4EO_DECUR = decur_weights(
        'rn50_rda_ssl4eo-s12_ms_decur_ep100.pth',
        'resnet50_rda',
        'SSL4EO-S12',
        ('ssl4eo_s2',),
    )
    RGB_DEM_GEONRW_DECUR = decur_weights(
        'rn50_rda_geonrw_joint_decur_ep100.pth',
        'resnet50_rda',
        'GeoNRW',
        ('geonrw_rgb', 'geonrw_dem'),
    )
    RGB_GEONRW_DECUR = decur_weights(
        'rn50_rda_geonrw_rgb_decur_ep100.pth',
        'resnet50_rda',
        'GeoNRW',
        ('geonrw_rgb',),
    )
    DEM_GEONRW_DECUR = decur_weights(
        'rn50_rda_geonrw_dem_decur_ep100.pth',
        'resnet50_rda',
        'GeoNRW',
        ('geonrw_dem',),
    )


def decur_resnet50(
    weights: DeCURResNet50_Weights | str | os.PathLike[str] | None = None,
    *,
    modality: str | int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-50 (timm) with DeCUR weights.

    Args:
        weights: A member, its name, or a path to a file in a released layout.
        modality: Which encoder of a joint file (name or 1-based position).
        **kwargs: Arguments of ``timm.create_model`` (``num_classes=0`` for pooled
            2048-d features).

    Returns:
        The encoder.
    """
    return build_encoder('resnet50', weights, modality=modality, **kwargs)


def decur_resnet50_rda(
    weights: DeCURResNet50RDA_Weights | str | os.PathLike[str] | None = None,
    *,
    modality: str | int | None = None,
    rda_semantics: RDASemantics = 'transfer',
    **kwargs: Any,
) -> nn.Module:
    """ResNet-50-RDA (timm ``resnet50_rda``) with DeCUR weights.

    Args:
        weights: A member, its name, or a path to a file in a released layout.
        modality: Which encoder of a joint file (name or 1-based position).
        rda_semantics: Attention blocks of modality 2 of joint files, see
            :class:`DeCURResNet50RDA_Weights`.
        **kwargs: Arguments of ``timm.create_model`` (``num_classes=0`` for pooled
            2048-d features).

    Returns:
        The encoder.
    """
    return build_encoder(
        'resnet50_rda',
        weights,
        modality=modality,
        rda_semantics=rda_semantics,
        **kwargs,
    )


__all__ = (
    'DeCURResNet50RDA_Weights',
    'DeCURResNet50_Weights',
    'decur_resnet50',
    'decur_resnet50_rda',
)
