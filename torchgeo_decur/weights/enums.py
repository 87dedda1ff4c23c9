"""The DeCUR Weights enums, one per architecture, one member per released file.

Each member is :func:`~.released.released_weights` of its row of
:data:`~.released.RELEASED_FILES`; :data:`WEIGHTS` lists the enums.
"""

from torchvision.models._api import WeightsEnum

from .base import DeCURWeightsEnum
from .released import released_weights


class DeCURResNet50_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR ResNet-50 weights (torchvision / timm ``resnet50`` keys).

    The SSL4EO-S12 files come from the older pipeline (branch ``decur-old``, no
    ImageNet initialisation); see the transforms for their uncertain Sentinel-2
    scaling. torchgeo's ``ResNet50_Weights.SENTINEL1_GRD_DECUR`` /
    ``SENTINEL2_ALL_DECUR`` re-host the two SSL4EO-S12 backbone files with other
    transforms (a z-score for S1, which that checkpoint did not see).
    """

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = released_weights(
        'rn50_ssl4eo-s12_joint_decur_ep100.pth'
    )
    SENTINEL1_GRD_SSL4EO_DECUR = released_weights('rn50_ssl4eo-s12_sar_decur_ep100.pth')
    SENTINEL2_L1C_SSL4EO_DECUR = released_weights('rn50_ssl4eo-s12_ms_decur_ep100.pth')
    RGB_DEM_GEONRW_DECUR = released_weights('rn50_geonrw_joint_decur_ep100.pth')
    RGB_GEONRW_DECUR = released_weights('rn50_geonrw_rgb_decur_ep100.pth')
    DEM_GEONRW_DECUR = released_weights('rn50_geonrw_dem_decur_ep100.pth')


class DeCURResNet50RDA_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR ResNet-50 with residual deformable attention (timm ``resnet50_rda``).

    Backbone-only files hold ``backbone.<ResNet keys>`` plus the attention blocks of
    their modality (``da1_*`` for SAR / RGB, ``da2_*`` for MS / DEM). For modality 2
    of the joint files, ``rda_semantics='transfer'`` (default) takes ``da2_*`` like
    those files and the authors' downstream code; ``'pretraining'`` takes ``da1_*``,
    which the pretraining forward actually used for both modalities.
    """

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = released_weights(
        'rn50_rda_ssl4eo-s12_joint_decur_ep100.pth'
    )
    SENTINEL1_GRD_SSL4EO_DECUR = released_weights(
        'rn50_rda_ssl4eo-s12_sar_decur_ep100.pth'
    )
    SENTINEL2_L1C_SSL4EO_DECUR = released_weights(
        'rn50_rda_ssl4eo-s12_ms_decur_ep100.pth'
    )
    RGB_DEM_GEONRW_DECUR = released_weights('rn50_rda_geonrw_joint_decur_ep100.pth')
    RGB_GEONRW_DECUR = released_weights('rn50_rda_geonrw_rgb_decur_ep100.pth')
    DEM_GEONRW_DECUR = released_weights('rn50_rda_geonrw_dem_decur_ep100.pth')


class DeCURViTSmall16_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR ViT-S/16 weights (the 150 timm keys without ``head``; 224 px input).

    The encoders return the final-LayerNorm CLS token (384-d) with ``num_classes=0``.

    ``vit_small_patch16_224`` has a fixed 14 x 14 (224 px) position embedding. The
    SSL4EO-S12 transforms crop to 224 px, but the GeoNRW ones keep the input size,
    as the reference evaluation did, and a native 250 px GeoNRW tile fails in
    timm's patch embedding (``AssertionError: Input height (250) doesn't match
    model (224)``). Either crop or resize the tiles to 224 px (e.g.
    ``torchvision.transforms.v2.CenterCrop(224)`` after the member's transform),
    or build the encoder with ``dynamic_img_size=True, dynamic_img_pad=True``
    (250 is not a multiple of 16; timm then pads the input and interpolates the
    position embedding, which the checkpoint was not trained with).
    """

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = released_weights(
        'vits16_ssl4eo-s12_joint_decur_ep100.pth'
    )
    SENTINEL1_GRD_SSL4EO_DECUR = released_weights(
        'vits16_ssl4eo-s12_sar_decur_ep100.pth'
    )
    SENTINEL2_L1C_SSL4EO_DECUR = released_weights(
        'vits16_ssl4eo-s12_ms_decur_ep100.pth'
    )
    RGB_DEM_GEONRW_DECUR = released_weights('vits16_geonrw_joint_decur_ep100.pth')
    RGB_GEONRW_DECUR = released_weights('vits16_geonrw_rgb_decur_ep100.pth')
    DEM_GEONRW_DECUR = released_weights('vits16_geonrw_dem_decur_ep100.pth')


class DeCURMiTB2_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR MiT-B2 weights (timm ``mit_b2``, smp's MiT encoder; SUN RGB-D).

    The joint file keeps DeCUR's ``head`` (Linear 512 → 2048) inside each encoder;
    its member says so in ``meta['backbone_kwargs']`` (``num_classes=2048``), which
    the DeCUR task applies. The backbone-only files hold the plain SegFormer / smp
    encoder keys.
    """

    RGB_HHA_SUNRGBD_DECUR = released_weights('mitb2_sunrgbd_rgb_hha_decur_ep200.pth')
    RGB_SUNRGBD_DECUR = released_weights('mitb2_sunrgbd_backbone_rgb_decur_ep200.pth')
    HHA_SUNRGBD_DECUR = released_weights('mitb2_sunrgbd_backbone_hha_decur_ep200.pth')


class DeCURMiTB5_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR MiT-B5 weights (timm ``mit_b5``, smp's MiT encoder; SUN RGB-D).

    The joint file keeps DeCUR's ``head`` (Linear 512 → 2048) inside each encoder,
    as for :class:`DeCURMiTB2_Weights`.
    """

    RGB_HHA_SUNRGBD_DECUR = released_weights('mitb5_sunrgbd_rgb_hha_decur_ep200.pth')
    RGB_SUNRGBD_DECUR = released_weights('mitb5_sunrgbd_backbone_rgb_decur_ep200.pth')
    HHA_SUNRGBD_DECUR = released_weights('mitb5_sunrgbd_backbone_hha_decur_ep200.pth')


#: The DeCUR Weights enums: the one list that registration with torchgeo,
#: checkpoint inspection and the tests go through.
WEIGHTS: tuple[type[WeightsEnum], ...] = (
    DeCURResNet50_Weights,
    DeCURResNet50RDA_Weights,
    DeCURViTSmall16_Weights,
    DeCURMiTB2_Weights,
    DeCURMiTB5_Weights,
)

__all__ = (
    'WEIGHTS',
    'DeCURMiTB2_Weights',
    'DeCURMiTB5_Weights',
    'DeCURResNet50RDA_Weights',
    'DeCURResNet50_Weights',
    'DeCURViTSmall16_Weights',
)
