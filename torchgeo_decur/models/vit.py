"""DeCUR ViT-S/16 weights and their builder (timm ``vit_small_patch16_224``)."""

from .builders import make_builder
from .weights_enum import DeCURWeightsEnum, decur_weights


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

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = decur_weights(
        'vits16_ssl4eo-s12_joint_decur_ep100.pth',
        'vit_small_patch16_224',
        'SSL4EO-S12',
        ('ssl4eo_s1', 'ssl4eo_s2'),
    )
    SENTINEL1_GRD_SSL4EO_DECUR = decur_weights(
        'vits16_ssl4eo-s12_sar_decur_ep100.pth',
        'vit_small_patch16_224',
        'SSL4EO-S12',
        ('ssl4eo_s1',),
    )
    SENTINEL2_L1C_SSL4EO_DECUR = decur_weights(
        'vits16_ssl4eo-s12_ms_decur_ep100.pth',
        'vit_small_patch16_224',
        'SSL4EO-S12',
        ('ssl4eo_s2',),
    )
    RGB_DEM_GEONRW_DECUR = decur_weights(
        'vits16_geonrw_joint_decur_ep100.pth',
        'vit_small_patch16_224',
        'GeoNRW',
        ('geonrw_rgb', 'geonrw_dem'),
    )
    RGB_GEONRW_DECUR = decur_weights(
        'vits16_geonrw_rgb_decur_ep100.pth',
        'vit_small_patch16_224',
        'GeoNRW',
        ('geonrw_rgb',),
    )
    DEM_GEONRW_DECUR = decur_weights(
        'vits16_geonrw_dem_decur_ep100.pth',
        'vit_small_patch16_224',
        'GeoNRW',
        ('geonrw_dem',),
    )


decur_vit_small_patch16_224 = make_builder(
    'vit_small_patch16_224', DeCURViTSmall16_Weights, 'ViT-S/16'
)

__all__ = ('DeCURViTSmall16_Weights', 'decur_vit_small_patch16_224')
