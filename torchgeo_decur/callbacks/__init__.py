"""Lightning callbacks that show whether pretraining works.

:class:`CorrelationPicture` draws DeCUR's cross- and intra-modal correlation
matrices of the validation embeddings once per validation epoch;
:class:`KNNProbe` and :class:`LinearProbe` measure how well one modality's frozen
encoder separates the classes of a labelled data module every few epochs.
"""

from .correlation import (
    CorrelationPicture,
    block_average,
    correlation_figure,
    correlation_matrix,
    correlation_panels,
    figure_to_array,
    log_image,
    write_figure_png,
)
from .probe import KNNProbe, LinearProbe, OnlineProbe

__all__ = (
    'CorrelationPicture',
    'KNNProbe',
    'LinearProbe',
    'OnlineProbe',
    'block_average',
    'correlation_figure',
    'correlation_matrix',
    'correlation_panels',
    'figure_to_array',
    'log_image',
    'write_figure_png',
)
