"""DeCUR ResNet-50 and ResNet-50-RDA weights and their builders.

Builders follow torchgeo's convention (``builder(weights, **timm_kwargs)``) and are
registered with torchgeo on ``import torchgeo_decur`` (see :mod:`.registry`).
"""

from .builders import make_builder
from .weights_enum import DeCURWeightsEnum, decur_weights


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
