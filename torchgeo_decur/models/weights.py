"""Former home of the Weights machinery, kept so existing imports still work.

The pieces now live in modules with one job each: :mod:`.inputs` (input
pipelines of the released files), :mod:`.weights_enum` (the enum base),
:mod:`.shapes` (architecture shapes), :mod:`.loading` (the weights resolver) and
:mod:`.builders` (the ``decur_*`` builders).
"""

from .builders import build_encoder, make_builder
from .inputs import INPUTS, ModalityInput
from .loading import as_decur_member, modality_mapping_note
from .weights_enum import HF_URL, DeCURWeightsEnum, decur_weights

__all__ = (
    'HF_URL',
    'INPUTS',
    'DeCURWeightsEnum',
    'ModalityInput',
    'as_decur_member',
    'build_encoder',
    'decur_weights',
    'make_builder',
    'modality_mapping_note',
)
