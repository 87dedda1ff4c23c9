"""DeCUR MiT-B2 / MiT-B5 weights (SUN RGB-D, RGB + HHA) and their builders.

Joint files keep DeCUR's ``head`` (Linear 512 → 2048) inside each encoder; members
say so in ``meta['backbone_kwargs']`` (``num_classes=2048``), which the DeCUR task
applies. Backbone-only files hold the plain SegFormer / smp encoder keys.
"""

from torchvision.models._api import Weights

from ..transforms.pretrained import sunrgbd_transforms
from .builders import make_builder
from .weights_enum import HF_URL, PUBLICATION, REPO, DeCURWeightsEnum


class DeCURMiTB2_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR MiT-B2 weights (timm ``mit_b2``, smp's MiT encoder)."""

    RGB_HHA_SUNRGBD_DECUR = Weights(
        url=HF_URL + 'mitb2_sunrgbd_rgb_hha_decur_ep200.pth',
        transforms=sunrgbd_transforms(),
        meta={
            'dataset': 'SUN RGB-D',
            'in_chans': 3,
            'model': 'mit_b2',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': ('rgb', 'hha'),
            'file': 'mitb2_sunrgbd_rgb_hha_decur_ep200.pth',
            'inputs': ('sunrgbd_rgb', 'sunrgbd_hha'),
            'in_chans_per_modality': {'rgb': 3, 'hha': 3},
            'bands_per_modality': {
                'rgb': ('B', 'G', 'R'),
                'hha': ('HHA_B', 'HHA_G', 'HHA_R'),
            },
            # DeCUR's MiT pretraining keeps a Linear(512, 2048) head in the encoder.
            'backbone_kwargs': {'num_classes': 2048},
        },
    )
    RGB_SUNRGBD_DECUR = Weights(
        url=HF_URL + 'mitb2_sunrgbd_backbone_rgb_decur_ep200.pth',
        transforms=sunrgbd_transforms(),
        meta={
            'dataset': 'SUN RGB-D',
            'in_chans': 3,
            'model': 'mit_b2',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': 'rgb',
            'file': 'mitb2_sunrgbd_backbone_rgb_decur_ep200.pth',
            'inputs': ('sunrgbd_rgb',),
            'backbone_kwargs': {},
        },
    )
    HHA_SUNRGBD_DECUR = Weights(
        url=HF_URL + 'mitb2_sunrgbd_backbone_hha_decur_ep200.pth',
        transforms=sunrgbd_transforms(),
        meta={
            'dataset': 'SUN RGB-D',
            'in_chans': 3,
            'model': 'mit_b2',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('HHA_B', 'HHA_G', 'HHA_R'),
            'modality': 'hha',
            'file': 'mitb2_sunrgbd_backbone_hha_decur_ep200.pth',
            'inputs': ('sunrgbd_hha',),
            'backbone_kwargs': {},
        },
    )


class DeCURMiTB5_Weights(DeCURWeightsEnum):  # noqa: N801
    """DeCUR MiT-B5 weights (timm ``mit_b5``, smp's MiT encoder)."""

    RGB_HHA_SUNRGBD_DECUR = Weights(
        url=HF_URL + 'mitb5_sunrgbd_rgb_hha_decur_ep200.pth',
        transforms=sunrgbd_transforms(),
        meta={
            'dataset': 'SUN RGB-D',
            'in_chans': 3,
            'model': 'mit_b5',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': ('rgb', 'hha'),
            'file': 'mitb5_sunrgbd_rgb_hha_decur_ep200.pth',
            'inputs': ('sunrgbd_rgb', 'sunrgbd_hha'),
            'in_chans_per_modality': {'rgb': 3, 'hha': 3},
            'bands_per_modality': {
                'rgb': ('B', 'G', 'R'),
                'hha': ('HHA_B', 'HHA_G', 'HHA_R'),
            },
            # DeCUR's MiT pretraining keeps a Linear(512, 2048) head in the encoder.
            'backbone_kwargs': {'num_classes': 2048},
        },
    )
    RGB_SUNRGBD_DECUR = Weights(
        url=HF_URL + 'mitb5_sunrgbd_backbone_rgb_decur_ep200.pth',
        transforms=sunrgbd_transforms(),
        meta={
            'dataset': 'SUN RGB-D',
            'in_chans': 3,
            'model': 'mit_b5',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('B', 'G', 'R'),
            'modality': 'rgb',
            'file': 'mitb5_sunrgbd_backbone_rgb_decur_ep200.pth',
            'inputs': ('sunrgbd_rgb',),
            'backbone_kwargs': {},
        },
    )
    HHA_SUNRGBD_DECUR = Weights(
        url=HF_URL + 'mitb5_sunrgbd_backbone_hha_decur_ep200.pth',
        transforms=sunrgbd_transforms(),
        meta={
            'dataset': 'SUN RGB-D',
            'in_chans': 3,
            'model': 'mit_b5',
            'publication': PUBLICATION,
            'repo': REPO,
            'ssl_method': 'decur',
            'bands': ('HHA_B', 'HHA_G', 'HHA_R'),
            'modality': 'hha',
            'file': 'mitb5_sunrgbd_backbone_hha_decur_ep200.pth',
            'inputs': ('sunrgbd_hha',),
            'backbone_kwargs': {},
        },
    )


decur_mit_b2 = make_builder('mit_b2', DeCURMiTB2_Weights, 'MiT-B2 encoder')
decur_mit_b5 = make_builder('mit_b5', DeCURMiTB5_Weights, 'MiT-B5 encoder')

__all__ = (
    'DeCURMiTB2_Weights',
    'DeCURMiTB5_Weights',
    'decur_mit_b2',
    'decur_mit_b5',
)
