"""The released DeCUR weights as torchgeo Weights enums.

:data:`~.released.RELEASED_FILES` describes every released file in one row (URL,
architecture, dataset, input pipelines, paper result); :mod:`.inputs` holds the
input pipelines (modality, bands, scaling) the rows name; every member of the
enums in :mod:`.enums` is built from its row by
:func:`~.released.released_weights`, and :data:`~.enums.WEIGHTS` lists the
enums. :mod:`.builders` holds the torchgeo-style ``decur_<model>`` builders and
:mod:`.registry` registers builders and enums with torchgeo (done by
``import torchgeo_decur``).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .base import DeCURWeightsEnum
    from .builders import (
        build_encoder,
        decur_mit_b2,
        decur_mit_b5,
        decur_resnet50,
        decur_resnet50_rda,
        decur_vit_small_patch16_224,
    )
    from .enums import (
        WEIGHTS,
        DeCURMiTB2_Weights,
        DeCURMiTB5_Weights,
        DeCURResNet50_Weights,
        DeCURResNet50RDA_Weights,
        DeCURViTSmall16_Weights,
    )
    from .inputs import INPUTS, ModalityInput
    from .registry import BUILDERS, register_with_torchgeo
    from .released import (
        HF_URL,
        RELEASED_FILES,
        ReleasedFile,
        released_file,
        released_weights,
    )

# Hidden from type checkers: they see the names through the TYPE_CHECKING
# imports above, so importing a name that does not exist is an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            '.base': ('DeCURWeightsEnum',),
            '.builders': (
                'build_encoder',
                'decur_mit_b2',
                'decur_mit_b5',
                'decur_resnet50',
                'decur_resnet50_rda',
                'decur_vit_small_patch16_224',
            ),
            '.enums': (
                'WEIGHTS',
                'DeCURMiTB2_Weights',
                'DeCURMiTB5_Weights',
                'DeCURResNet50RDA_Weights',
                'DeCURResNet50_Weights',
                'DeCURViTSmall16_Weights',
            ),
            '.inputs': ('INPUTS', 'ModalityInput'),
            '.registry': ('BUILDERS', 'register_with_torchgeo'),
            '.released': (
                'HF_URL',
                'RELEASED_FILES',
                'ReleasedFile',
                'released_file',
                'released_weights',
            ),
        },
    )

__all__ = (
    'BUILDERS',
    'HF_URL',
    'INPUTS',
    'RELEASED_FILES',
    'WEIGHTS',
    'DeCURMiTB2_Weights',
    'DeCURMiTB5_Weights',
    'DeCURResNet50RDA_Weights',
    'DeCURResNet50_Weights',
    'DeCURViTSmall16_Weights',
    'DeCURWeightsEnum',
    'ModalityInput',
    'ReleasedFile',
    'build_encoder',
    'decur_mit_b2',
    'decur_mit_b5',
    'decur_resnet50',
    'decur_resnet50_rda',
    'decur_vit_small_patch16_224',
    'register_with_torchgeo',
    'released_file',
    'released_weights',
)
