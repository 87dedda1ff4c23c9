"""DeCUR ResNet-50 and ResNet-50-RDA weights and their builders.

Builders follow torchgeo's convention (``builder(weights, **timm_kwargs)``) and are
registered with torchgeo on ``import torchgeo_decur`` (see :mod:`.registry`).
"""

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


class DeCURResNet50_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR ResNet-50 weights (torchvision / timm ``resnet50`` keys).

    The SSL4EO-S12 files come from the older pipeline (branch ``decur-old``, no
    ImageNet initialisation); see the transforms for their uncertain Sentinel-2
    scaling. torchgeo's ``ResNet50_Weights.SENTINEL1_GRD_DECUR`` /
    ``SENTINEL2_ALL_DECUR`` re-host the two SSL4EO-S12 backbone files with other
    transforms (a z-score for S1, which that checkpoint did not see).
    """

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = Weights(
        url=HF_URL + 'rn50_ssl4eo-s12_joint_decur_ep100.pth',
        transforms=ssl4eo_s1_transforms('old'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 2,
            'model': 'resnet50',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S1_BANDS,
            'modality': ('s1', 's2'),
            'file': 'rn50_ssl4eo-s12_joint_decur_ep100.pth',
            'inputs': ('ssl4eo_s1_old', 'ssl4eo_s2_old'),
            'in_chans_per_modality': {'s1': 2, 's2': 13},
            'bands_per_modality': {
                's1': SSL4EO_S12_S1_BANDS,
                's2': SSL4EO_S12_S2_BANDS,
            },
            'backbone_kwargs': {},
        },
    )
    SENTINEL1_GRD_SSL4EO_DECUR = Weights(
        url=HF_URL + 'rn50_ssl4eo-s12_sar_decur_ep100.pth',
        transforms=ssl4eo_s1_transforms('old'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 2,
            'model': 'resnet50',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S1_BANDS,
            'modality': 's1',
            'file': 'rn50_ssl4eo-s12_sar_decur_ep100.pth',
            'inputs': ('ssl4eo_s1_old',),
            'backbone_kwargs': {},
        },
    )
    SENTINEL2_L1C_SSL4EO_DECUR = Weights(
        url=HF_URL + 'rn50_ssl4eo-s12_ms_decur_ep100.pth',
        transforms=ssl4eo_s2_transforms('old'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 13,
            'model': 'resnet50',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S2_BANDS,
            'modality': 's2',
            'file': 'rn50_ssl4eo-s12_ms_decur_ep100.pth',
            'inputs': ('ssl4eo_s2_old',),
            'backbone_kwargs': {},
        },
    )
    RGB_DEM_GEONRW_DECUR = Weights(
        url=HF_URL + 'rn50_geonrw_joint_decur_ep100.pth',
        transforms=geonrw_rgb_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'resnet50',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': ('rgb', 'dem'),
            'file': 'rn50_geonrw_joint_decur_ep100.pth',
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
        url=HF_URL + 'rn50_geonrw_rgb_decur_ep100.pth',
        transforms=geonrw_rgb_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'resnet50',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': 'rgb',
            'file': 'rn50_geonrw_rgb_decur_ep100.pth',
            'inputs': ('geonrw_rgb',),
            'backbone_kwargs': {},
        },
    )
    DEM_GEONRW_DECUR = Weights(
        url=HF_URL + 'rn50_geonrw_dem_decur_ep100.pth',
        transforms=geonrw_dem_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'resnet50',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('DEM', 'DEM', 'DEM'),
            'modality': 'dem',
            'file': 'rn50_geonrw_dem_decur_ep100.pth',
            'inputs': ('geonrw_dem',),
            'backbone_kwargs': {},
        },
    )


class DeCURResNet50RDA_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR ResNet-50 with residual deformable attention (timm ``resnet50_rda``).

    Backbone-only files hold ``backbone.<ResNet keys>`` plus the attention blocks of
    their modality (``da1_*`` for SAR / RGB, ``da2_*`` for MS / DEM). For modality 2
    of the joint files, ``rda_semantics='transfer'`` (default) takes ``da2_*`` like
    those files and the authors' downstream code; ``'pretraining'`` takes ``da1_*``,
    which the pretraining forward actually used for both modalities.
    """

    SENTINEL1_SENTINEL2_SSL4EO_DECUR = Weights(
        url=HF_URL + 'rn50_rda_ssl4eo-s12_joint_decur_ep100.pth',
        transforms=ssl4eo_s1_transforms('main'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 2,
            'model': 'resnet50_rda',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S1_BANDS,
            'modality': ('s1', 's2'),
            'file': 'rn50_rda_ssl4eo-s12_joint_decur_ep100.pth',
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
        url=HF_URL + 'rn50_rda_ssl4eo-s12_sar_decur_ep100.pth',
        transforms=ssl4eo_s1_transforms('main'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 2,
            'model': 'resnet50_rda',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S1_BANDS,
            'modality': 's1',
            'file': 'rn50_rda_ssl4eo-s12_sar_decur_ep100.pth',
            'inputs': ('ssl4eo_s1',),
            'backbone_kwargs': {},
        },
    )
    SENTINEL2_L1C_SSL4EO_DECUR = Weights(
        url=HF_URL + 'rn50_rda_ssl4eo-s12_ms_decur_ep100.pth',
        transforms=ssl4eo_s2_transforms('main'),
        meta={
            'dataset': 'SSL4EO-S12',
            'in_chans': 13,
            'model': 'resnet50_rda',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': SSL4EO_S12_S2_BANDS,
            'modality': 's2',
            'file': 'rn50_rda_ssl4eo-s12_ms_decur_ep100.pth',
            'inputs': ('ssl4eo_s2',),
            'backbone_kwargs': {},
        },
    )
    RGB_DEM_GEONRW_DECUR = Weights(
        url=HF_URL + 'rn50_rda_geonrw_joint_decur_ep100.pth',
        transforms=geonrw_rgb_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'resnet50_rda',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': ('rgb', 'dem'),
            'file': 'rn50_rda_geonrw_joint_decur_ep100.pth',
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
        url=HF_URL + 'rn50_rda_geonrw_rgb_decur_ep100.pth',
        transforms=geonrw_rgb_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'resnet50_rda',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': 'rgb',
            'file': 'rn50_rda_geonrw_rgb_decur_ep100.pth',
            'inputs': ('geonrw_rgb',),
            'backbone_kwargs': {},
        },
    )
    DEM_GEONRW_DECUR = Weights(
        url=HF_URL + 'rn50_rda_geonrw_dem_decur_ep100.pth',
        transforms=geonrw_dem_transforms(),
        meta={
            'dataset': 'GeoNRW',
            'in_chans': 3,
            'model': 'resnet50_rda',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('DEM', 'DEM', 'DEM'),
            'modality': 'dem',
            'file': 'rn50_rda_geonrw_dem_decur_ep100.pth',
            'inputs': ('geonrw_dem',),
            'backbone_kwargs': {},
        },
    )


decur_resnet50 = make_builder('resnet50', DeCURResNet50_Weights, 'ResNet-50')
decur_resnet50_rda = make_builder(
    'resnet50_rda',
    DeCURResNet50RDA_Weights,
    'ResNet-50 with residual deformable attention',
)

__all__ = (
    'DeCURResNet50RDA_Weights',
    'DeCURResNet50_Weights',
    'decur_resnet50',
    'decur_resnet50_rda',
)
