"""The released DeCUR files: one row per file, and the Weights value of a row.

:data:`RELEASED_FILES` is the one description of the authors' release
(<https://huggingface.co/wangyi111/DeCUR>); every member of the Weights enums
(:mod:`.enums`) is :func:`released_weights` of one of its rows. A row names its
input pipelines (:data:`~.inputs.INPUTS`) by key, so modality, band order and
input scaling are written once per pipeline, not once per file.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torchvision.models._api import Weights

from .inputs import INPUTS

#: Where the authors host the released files.
HF_URL = 'https://huggingface.co/wangyi111/DeCUR/resolve/main/'
#: The DeCUR paper.
PUBLICATION = 'https://arxiv.org/abs/2309.05300'
#: The authors' code.
REPO = 'https://github.com/zhu-xlab/DeCUR'

#: ``backbone_kwargs`` of the joint MiT files: DeCUR's MiT pretraining keeps a
#: Linear(512, 2048) head inside each encoder.
MIT_JOINT_HEAD: Mapping[str, Any] = {'num_classes': 2048}


@dataclass(frozen=True)
class ReleasedFile:
    """One released file.

    Attributes:
        file: File name in the release; the download URL is :attr:`url`.
        model: timm name of the encoder architecture (builder ``decur_<model>``).
        dataset: Pretraining dataset.
        inputs: Keys of :data:`~.inputs.INPUTS`, one per encoder in the file,
            modality 1 first (two for the joint files that hold both encoders):
            each gives the modality, the bands in checkpoint order and the input
            scaling.
        backbone_kwargs: Extra ``timm.create_model`` arguments the encoders need to
            hold everything in the file.
        paper_result: Downstream result the paper reports for DeCUR in this file's
            setting (dataset, metric, value), or None where it reports none.
    """

    file: str
    model: str
    dataset: str
    inputs: tuple[str, ...]
    backbone_kwargs: Mapping[str, Any] = field(default_factory=dict)
    paper_result: str | None = None

    @property
    def url(self) -> str:
        """Download URL of the file."""
        return HF_URL + self.file

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality of each encoder, modality 1 first."""
        return tuple(INPUTS[key].name for key in self.inputs)

    @property
    def bands(self) -> dict[str, tuple[str, ...]]:
        """Band names in checkpoint order, per modality."""
        return {INPUTS[key].name: INPUTS[key].bands for key in self.inputs}


SSL4EO, GEONRW, SUNRGBD = 'SSL4EO-S12', 'GeoNRW', 'SUN RGB-D'

#: Every released file, one row each (24): file name, timm architecture,
#: pretraining dataset, input pipeline of each encoder (modality 1 first), then
#: the extra timm arguments and the paper's result where there are any.
# fmt: off
RELEASED_FILES: tuple[ReleasedFile, ...] = (
    ReleasedFile('rn50_ssl4eo-s12_joint_decur_ep100.pth',      'resnet50',              SSL4EO,  ('ssl4eo_s1_old', 'ssl4eo_s2_old')),
    ReleasedFile('rn50_ssl4eo-s12_sar_decur_ep100.pth',        'resnet50',              SSL4EO,  ('ssl4eo_s1_old',)),
    ReleasedFile('rn50_ssl4eo-s12_ms_decur_ep100.pth',         'resnet50',              SSL4EO,  ('ssl4eo_s2_old',)),
    ReleasedFile('rn50_geonrw_joint_decur_ep100.pth',          'resnet50',              GEONRW,  ('geonrw_rgb', 'geonrw_dem')),
    ReleasedFile('rn50_geonrw_rgb_decur_ep100.pth',            'resnet50',              GEONRW,  ('geonrw_rgb',)),
    ReleasedFile('rn50_geonrw_dem_decur_ep100.pth',            'resnet50',              GEONRW,  ('geonrw_dem',)),
    ReleasedFile('rn50_rda_ssl4eo-s12_joint_decur_ep100.pth',  'resnet50_rda',          SSL4EO,  ('ssl4eo_s1', 'ssl4eo_s2'), paper_result='BigEarthNet-MM mAP, linear / fine-tune, 1 % / 100 % labels: SAR + MS 79.8 / 81.5, 86.2 / 89.8'),
    ReleasedFile('rn50_rda_ssl4eo-s12_sar_decur_ep100.pth',    'resnet50_rda',          SSL4EO,  ('ssl4eo_s1',), paper_result='BigEarthNet-MM mAP, linear / fine-tune, 1 % / 100 % labels: SAR only 74.4 / 76.0, 79.5 / 84.0'),
    ReleasedFile('rn50_rda_ssl4eo-s12_ms_decur_ep100.pth',     'resnet50_rda',          SSL4EO,  ('ssl4eo_s2',)),
    ReleasedFile('rn50_rda_geonrw_joint_decur_ep100.pth',      'resnet50_rda',          GEONRW,  ('geonrw_rgb', 'geonrw_dem'), paper_result='GeoNRW mIoU, frozen / fine-tune, 1 % / 100 % labels: RGB + DEM 34.7 / 36.6, 44.7 / 48.9'),
    ReleasedFile('rn50_rda_geonrw_rgb_decur_ep100.pth',        'resnet50_rda',          GEONRW,  ('geonrw_rgb',), paper_result='GeoNRW mIoU, frozen / fine-tune, 1 % / 100 % labels: RGB only 32.2 / 35.7, 40.8 / 46.7'),
    ReleasedFile('rn50_rda_geonrw_dem_decur_ep100.pth',        'resnet50_rda',          GEONRW,  ('geonrw_dem',)),
    ReleasedFile('vits16_ssl4eo-s12_joint_decur_ep100.pth',    'vit_small_patch16_224', SSL4EO,  ('ssl4eo_s1', 'ssl4eo_s2')),
    ReleasedFile('vits16_ssl4eo-s12_sar_decur_ep100.pth',      'vit_small_patch16_224', SSL4EO,  ('ssl4eo_s1',)),
    ReleasedFile('vits16_ssl4eo-s12_ms_decur_ep100.pth',       'vit_small_patch16_224', SSL4EO,  ('ssl4eo_s2',)),
    ReleasedFile('vits16_geonrw_joint_decur_ep100.pth',        'vit_small_patch16_224', GEONRW,  ('geonrw_rgb', 'geonrw_dem')),
    ReleasedFile('vits16_geonrw_rgb_decur_ep100.pth',          'vit_small_patch16_224', GEONRW,  ('geonrw_rgb',)),
    ReleasedFile('vits16_geonrw_dem_decur_ep100.pth',          'vit_small_patch16_224', GEONRW,  ('geonrw_dem',)),
    ReleasedFile('mitb2_sunrgbd_rgb_hha_decur_ep200.pth',      'mit_b2',                SUNRGBD, ('sunrgbd_rgb', 'sunrgbd_hha'), backbone_kwargs=MIT_JOINT_HEAD, paper_result='SUN RGB-D mIoU as the encoders of CMX (MiT-B2): 50.6 (CMX alone: 49.7)'),
    ReleasedFile('mitb2_sunrgbd_backbone_rgb_decur_ep200.pth', 'mit_b2',                SUNRGBD, ('sunrgbd_rgb',)),
    ReleasedFile('mitb2_sunrgbd_backbone_hha_decur_ep200.pth', 'mit_b2',                SUNRGBD, ('sunrgbd_hha',)),
    ReleasedFile('mitb5_sunrgbd_rgb_hha_decur_ep200.pth',      'mit_b5',                SUNRGBD, ('sunrgbd_rgb', 'sunrgbd_hha'), backbone_kwargs=MIT_JOINT_HEAD, paper_result='NYU-Depth v2 mIoU as the encoders of CMX (MiT-B5): 57.3 (CMX alone: 56.9)'),
    ReleasedFile('mitb5_sunrgbd_backbone_rgb_decur_ep200.pth', 'mit_b5',                SUNRGBD, ('sunrgbd_rgb',)),
    ReleasedFile('mitb5_sunrgbd_backbone_hha_decur_ep200.pth', 'mit_b5',                SUNRGBD, ('sunrgbd_hha',)),
)
# fmt: on

_BY_FILE = {row.file: row for row in RELEASED_FILES}


def released_file(file: str) -> ReleasedFile:
    """The row of :data:`RELEASED_FILES` of one file.

    Args:
        file: File name in the release.

    Returns:
        The row.

    Raises:
        ValueError: If the release has no such file.
    """
    try:
        return _BY_FILE[file]
    except KeyError:
        raise ValueError(f'{file!r} is not a released DeCUR file') from None


def released_weights(file: str) -> Weights:
    """The torchvision ``Weights`` value of one released file.

    ``meta`` holds plain values only: torchgeo's standard keys (``dataset``,
    ``in_chans``, ``model``, ``publication``, ``repo``, ``ssl_method``,
    ``bands``), then ``modality`` (a name, or a pair for joint files), ``file``,
    ``inputs`` (the :data:`~.inputs.INPUTS` keys, one per encoder), for joint
    files ``in_chans_per_modality`` and ``bands_per_modality``, and
    ``backbone_kwargs``. ``transforms``, ``in_chans`` and ``bands`` describe
    modality 1; the enums build the others on demand
    (:meth:`~.base.DeCURWeightsEnum.transforms_for`).

    Args:
        file: File name in the release (a row of :data:`RELEASED_FILES`).

    Returns:
        The ``Weights``.

    Raises:
        ValueError: If the release has no such file.
    """
    row = released_file(file)
    specs = [INPUTS[key] for key in row.inputs]
    first = specs[0]
    meta: dict[str, Any] = {
        'dataset': row.dataset,
        'in_chans': len(first.bands),
        'model': row.model,
        'publication': PUBLICATION,
        'repo': REPO,
        'ssl_method': 'decur',
        'bands': first.bands,
        'modality': row.modalities[0] if len(specs) == 1 else row.modalities,
        'file': row.file,
        'inputs': row.inputs,
    }
    if len(specs) > 1:
        meta['in_chans_per_modality'] = {s.name: len(s.bands) for s in specs}
        meta['bands_per_modality'] = dict(row.bands)
    meta['backbone_kwargs'] = dict(row.backbone_kwargs)
    return Weights(url=row.url, transforms=first.transforms(), meta=meta)


__all__ = (
    'HF_URL',
    'PUBLICATION',
    'RELEASED_FILES',
    'REPO',
    'ReleasedFile',
    'released_file',
    'released_weights',
)
