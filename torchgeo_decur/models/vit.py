"""DeCUR ViT-S/16 weights and their builder (timm ``vit_small_patch16_224``)."""

from torchvision.models._api import Weights

from ..transforms.normalize import SSL4EO_S12_S1_BANDS, SSL4EO_S12_S2_BANDS
from ..transforms.pretrained import (
    geonrw_dem_transforms,
    geonrw_rgb_transforms,
    ssl4eo_s1_transforms,
    ssl4eo_s2_transforms,
)
from .builders import make_builder
from .weights_enum import HF_URL, PUBLICATION, REPO, DeCURWeightsEnum


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

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = Weights(
        url=HF_URL + 'vits16_ssl4eo-s12_joint_decur_ep100.pth',
        transforms=ssl4eo_s1_transforms('main'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 2,
            'model': 'vit_small_patch16_224',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S1_BANDS,
            'modality': ('s1', 's2'),
            'file': 'vits16_ssl4eo-s12_joint_decur_ep100.pth',
            'inputs': ('ssl4eo_s1', 'ssl4eo_s2'),
            'in_chans_per_modality': {'s1': 2, 's2': 13},
            'bands_per_modality': {
                's1': SSL4EO_S12_S1_BANDS,
                's2': SSL4EO_S12_S2_BANDS,
            },
            'backbone_kwargs': {},
        },
    )
    SENTINEL1_GRD_SSL4EO_DECUR = Weights(
        url=HF_URL + 'vits16_ssl4eo-s12_sar_decur_ep100.pth',
        transforms=ssl4eo_s1_transforms('main'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 2,
            'model': 'vit_small_patch16_224',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S1_BANDS,
            'modality': 's1',
            'file': 'vits16_ssl4eo-s12_sar_decur_ep100.pth',
            'inputs': ('ssl4eo_s1',),
            'backbone_kwargs': {},
        },
    )
    SENTINEL2_L1C_SSL4EO_DECUR = Weights(
        url=HF_URL + 'vits16_ssl4eo-s12_ms_decur_ep100.pth',
        transforms=ssl4eo_s2_transforms('main'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 13,
            'model': 'vit_small_patch16_224',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S2_BANDS,
            'modality': 's2',
            'file': 'vits16_ssl4eo-s12_ms_decur_ep100.pth',
            'inputs': ('ssl4eo_s2',),
            'backbone_kwargs': {},
        },
    )
    RGB_DEM_GEONRW_DECUR = Weights(
        url=HF_URL + 'vits16_geonrw_joint_decur_ep100.pth',
        transforms=geonrw_rgb_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'vit_small_patch16_224',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': ('rgb', 'dem'),
            'file': 'vits16_geonrw_joint_decur_ep100.pth',
            'inputs': ('geonrw_rgb', 'geonrw_dem'),
            'in_chans_per_modality': {'rgb': 3, 'dem': 3},
            'bands_per_modality': {
                'rgb': ('B', 'G', 'R'),
                'dem': ('DEM', 'DEM', 'DEM'),
            },
            'backbone_kwargs': {},
        },
    )
    RGB_GEONRW_DECUR = Weights(
        url=HF_URL + 'vits16_geonrw_rgb_decur_ep100.pth',
        transforms=geonrw_rgb_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'vit_small_patch16_224',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': 'rgb',
            'file': 'vits16_geonrw_rgb_decur_ep100.pth',
            'inputs': ('geonrw_rgb',),
            'backbone_kwargs': {},
        },
    )
    DEM_GEONRW_DECUR = Weights(
        url=HF_URL + 'vits16_geonrw_dem_decur_ep100.pth',
        transforms=geonrw_dem_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'vit_small_patch16_224',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('DEM', 'DEM', 'DEM'),
            'modality': 'dem',
            'file': 'vits16_geonrw_dem_decur_ep100.pth',
            'inputs': ('geonrw_dem',),
            'backbone_kwargs': {},
        },
    )


decur_vit_small_patch16_224 = make_builder(
    'vit_small_patch16_224', DeCURViTSmall16_Weights, 'ViT-S/16'
)

__all__ = ('DeCURViTSmall16_Weights', 'decur_vit_small_patch16_224')
