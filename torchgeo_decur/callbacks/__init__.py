"""Lightning callbacks that show whether pretraining works.

:class:`CorrelationPicture` draws DeCUR's cross- and intra-modal correlation
matrices of the validation embeddings once per validation epoch;
:class:`KNNProbe` and :class:`LinearProbe` measure how well one modality's frozen
encoder separates the classes of a labelled data module every few epochs. :class:`EmbeddingWriter` writes the
per-patch embeddings of a ``predict`` run. :class:`RunLoggers` writes
TensorBoard and CSV logs under the trainer's ``default_root_dir``.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
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
    from .embedding_writer import EmbeddingWriter
    from .probe import KNNProbe, LinearProbe, OnlineProbe
    from .run_loggers import RunLoggers

# Hidden from type checkers: they see the names through the TYPE_CHECKING
# imports above, so importing a name that does not exist is an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            '.correlation': (
                'CorrelationPicture',
                'block_average',
                'correlation_figure',
                'correlation_matrix',
                'correlation_panels',
                'figure_to_array',
                'log_image',
                'write_figure_png',
            ),
            '.embedding_writer': ('EmbeddingWriter',),
            '.probe': (
                'KNNProbe',
                'LinearProbe',
                'OnlineProbe',
            ),
            '.run_loggers': ('RunLoggers',),
        },
    )

__all__ = (
    'CorrelationPicture',
    'EmbeddingWriter',
    'KNNProbe',
    'LinearProbe',
    'OnlineProbe',
    'RunLoggers',
    'block_average',
    'correlation_figure',
    'correlation_matrix',
    'correlation_panels',
    'figure_to_array',
    'log_image',
    'write_figure_png',
)
