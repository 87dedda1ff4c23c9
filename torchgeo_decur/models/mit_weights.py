"""DeCUR MiT-B2 / MiT-B5 weights (SUN RGB-D, RGB + HHA) and their builders.

Joint files keep DeCUR's ``head`` (Linear 512 → 2048) inside each encoder; members
say so in ``meta['backbone_kwargs']`` (``num_classes=2048``), which the DeCUR task
applies. Backbone-only files hold the plain SegFormer / smp encoder keys.
"""

from .builders import make_builder
from .weights_enum import DeCURWeightsEnum, decur_weights

#: DeCUR's MiT pretraining puts a 2048-d head inside the encoder.
_JOINT_KWARGS = {'num_classes': 2048}


class DeCURMiTB2_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR MiT-B2 weights (timm ``mit_b2``, smp's MiT encoder)."""

    RGB_HHA_SUNRGBD_DECUR = decur_weights(
        'mitb2_sunrgbd_rgb_hha_decur_ep200.pth',
        'mit_b2',
        'SUN RGB-D',
        ('sunrgbd_rgb', 'sunrgbd_hha'),
        _JOINT_KWARGS,
    )
    RGB_SUNRGBD_DECUR = decur_weights(
        'mitb2_sunrgbd_backbone_rgb_decur_ep200.pth',
        'mit_b2',
        'SUN RGB-D',
        ('sunrgbd_rgb',),
    )
    HHA_SUNRGBD_DECUR = decur_weights(
        'mitb2_sunrgbd_backbone_hha_decur_ep200.pth',
        'mit_b2',
        'SUN RGB-D',
        ('sunrgbd_hha',),
    )


class DeCURMiTB5_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR MiT-B5 weights (timm ``mit_b5``, smp's MiT encoder)."""

    RGB_HHA_SUNRGBD_DECUR = decur_weights(
        'mitb5_sunrgbd_rgb_hha_decur_ep200.pth',
        'mit_b5',
        'SUN RGB-D',
        ('sunrgbd_rgb', 'sunrgbd_hha'),
        _JOINT_KWARGS,
    )
    RGB_SUNRGBD_DECUR = decur_weights(
        'mitb5_sunrgbd_backbone_rgb_decur_ep200.pth',
        'mit_b5',
        'SUN RGB-D',
        ('sunrgbd_rgb',),
    )
    HHA_SUNRGBD_DECUR = decur_weights(
        'mitb5_sunrgbd_backbone_hha_decur_ep200.pth',
        'mit_b5',
        'SUN RGB-D',
        ('sunrgbd_hha',),
    )


decur_mit_b2 = make_builder('mit_b2', DeCURMiTB2_Weights, 'MiT-B2 encoder')
decur_mit_b5 = make_builder('mit_b5', DeCURMiTB5_Weights, 'MiT-B5 encoder')

__all__ = (
    'DeCURMiTB2_Weights',
    'DeCURMiTB5_Weights',
    'decur_mit_b2',
    'decur_mit_b5',
)
