"""The DeCUR correlation picture: cross- and intra-modal correlation matrices.

DeCUR trains the cross-modal correlation of the two modalities' embeddings to an
identity in its first ``common_dim`` dimensions (aligned, shared information) and to
a zero diagonal in the rest (decorrelated, modality-unique information), and each
modality's two views to an identity. Drawing these K x K matrices shows whether
training goes that way: a bright diagonal in the common block, a dark one in the
unique block, and a bright diagonal in each intra-modal matrix.
"""

import itertools
import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

# Figures are drawn on an Agg canvas directly, never through pyplot: no display
# is needed and the user's matplotlib backend is left alone.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from ..losses.decur import batch_standardize

#: Colour of the common/unique boundary lines (pure red is not in the colour map,
#: so the lines stay identifiable in the rendered image).
BOUNDARY_COLOR = (1.0, 0.0, 0.0)

#: Colour map of the matrices: -1 blue, 0 white, +1 red would hide the boundary,
#: so a perceptually uniform map without pure red is used.
CMAP = 'viridis'


def correlation_matrix(a: Tensor, b: Tensor, eps: float = 1e-5) -> Tensor:
    """Cross-correlation of two embedding batches, as in the DeCUR loss.

    Both are standardised per dimension over the batch (mean 0, biased std 1,
    ``eps`` added to the variance) and ``a.T @ b / N`` is returned.

    Args:
        a: Embeddings (N, K).
        b: Embeddings (N, K').
        eps: Added to the batch variance.

    Returns:
        The (K, K') correlation matrix, float32, values in [-1, 1].

    Raises:
        ValueError: If the batches differ in size or hold fewer than 2 samples.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f'need two (N, K) embedding batches of equal N, got {tuple(a.shape)} '
            f'and {tuple(b.shape)}'
        )
    if a.shape[0] < 2:
        raise ValueError(f'need at least 2 samples for a correlation, got {a.shape[0]}')
    za = batch_standardize(a.float(), eps)
    zb = batch_standardize(b.float(), eps)
    return za.T @ zb / a.shape[0]


def block_average(matrix: Tensor, max_size: int = 256) -> Tensor:
    """Shrink a matrix to at most ``max_size`` x ``max_size`` by block averaging.

    Uses :func:`torch.nn.functional.adaptive_avg_pool2d`, so sizes that do not
    divide evenly still average every entry into exactly one output cell.

    Args:
        matrix: (K, K') matrix.
        max_size: Largest output side length.

    Returns:
        (min(K, max_size), min(K', max_size)) matrix.
    """
    if max_size < 1:
        raise ValueError(f'max_size must be positive, got {max_size}')
    rows, cols = matrix.shape
    size = (min(rows, max_size), min(cols, max_size))
    if size == (rows, cols):
        return matrix
    return F.adaptive_avg_pool2d(matrix[None, None], size)[0, 0]


class Panel(NamedTuple):
    """One matrix of the correlation picture.

    Attributes:
        title: What it shows, with its mean diagonal values.
        matrix: The block-averaged correlation matrix (on the CPU).
        boundary: Where to draw the common/unique boundary, in matrix cells, or
            None.
    """

    title: str
    matrix: Tensor
    boundary: float | None


def correlation_panels(
    embeddings: Mapping[str, Sequence[Tensor]],
    common_dim: int | None = None,
    max_size: int = 256,
) -> list[list[Panel]]:
    """The matrices of the picture, one row per modality pair.

    Every row holds, for a pair (i, j) in modality order: the cross-modal
    correlation C(view 1 of i, view 1 of j) (what the common/unique terms of the
    loss see), then the intra-modal correlation C(view 1, view 2) of i and of j
    (the intra-modal Barlow Twins terms; C(view 1, view 1) when there is only one
    view, which shows the redundancy between dimensions instead). The matrices are
    computed on the device of the embeddings at full size, then block-averaged.

    Args:
        embeddings: For every modality (at least two) a list of views, each
            (N, K), all with the same N.
        common_dim: Number of common dimensions (None: no boundary).
        max_size: Largest side length of a kept matrix.

    Returns:
        Rows of three panels.

    Raises:
        ValueError: For fewer than two modalities or a ``common_dim`` outside [0, K].
    """
    names = list(embeddings)
    if len(names) < 2:
        raise ValueError(f'need at least two modalities, got {names}')
    k = int(embeddings[names[0]][0].shape[1])
    if common_dim is not None and not 0 <= common_dim <= k:
        raise ValueError(f'common_dim={common_dim} is outside [0, K] = [0, {k}]')
    intra: dict[str, Panel] = {}
    for m in names:
        views = embeddings[m]
        second = views[1] if len(views) > 1 else views[0]
        full = correlation_matrix(views[0], second)
        label = f'{m}: view 1 x view 2' if len(views) > 1 else f'{m} x {m}'
        label += f'\nmean diag {torch.diagonal(full).mean():.2f}'
        intra[m] = Panel(label, block_average(full, max_size).cpu(), None)
    rows = []
    for i, j in itertools.combinations(names, 2):
        full = correlation_matrix(embeddings[i][0], embeddings[j][0])
        diag = torch.diagonal(full)
        shown = block_average(full, max_size).cpu()
        label = f'{i} x {j} (view 1)'
        boundary = None
        if common_dim is not None and 0 < common_dim < k:
            boundary = common_dim * shown.shape[0] / k
            label += (
                f'\ncommon diag {diag[:common_dim].mean():.2f}, '
                f'unique diag {diag[common_dim:].mean():.2f}'
            )
        else:
            label += f'\nmean diag {diag.mean():.2f}'
        rows.append([Panel(label, shown, boundary), intra[i], intra[j]])
    return rows


def correlation_figure(
    embeddings: Mapping[str, Sequence[Tensor]] | None = None,
    common_dim: int | None = None,
    max_size: int = 256,
    title: str | None = None,
    panels: list[list[Panel]] | None = None,
) -> Figure:
    """Draw the correlation picture.

    One row per modality pair: the cross-modal matrix with the common/unique
    boundary (row and column ``common_dim``) in red, then the intra-modal matrices
    of the two modalities. Colours run from -1 to 1; each panel's title gives the
    mean diagonal of the blocks (``common``/``unique`` for cross-modal panels).

    Args:
        embeddings: For every modality (at least two) a list of views, each (N, K),
            all with the same N; or None when ``panels`` are given.
        common_dim: Number of common dimensions (None: no boundary drawn).
        max_size: Largest side length of a drawn matrix (block-averaged above).
        title: Figure title.
        panels: Precomputed :func:`correlation_panels` (then ``embeddings``,
            ``common_dim`` and ``max_size`` are not used).

    Returns:
        The matplotlib figure (not attached to pyplot; nothing to close).

    Raises:
        ValueError: For fewer than two modalities or a ``common_dim`` outside [0, K].
    """
    if panels is None:
        if embeddings is None:
            raise ValueError('pass embeddings or panels')
        panels = correlation_panels(embeddings, common_dim, max_size)
    figure = Figure(figsize=(9.6, 3.3 * len(panels)), dpi=100, layout='constrained')
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 3, squeeze=False)
    image: Any = None
    for r, row in enumerate(panels):
        for c, panel in enumerate(row):
            ax = axes[r, c]
            image = ax.imshow(
                panel.matrix.numpy(),
                cmap=CMAP,
                vmin=-1,
                vmax=1,
                interpolation='nearest',
            )
            if panel.boundary is not None:
                edge = panel.boundary - 0.5  # between cells boundary-1 and boundary
                ax.axhline(edge, color=BOUNDARY_COLOR, linewidth=1.5)
                ax.axvline(edge, color=BOUNDARY_COLOR, linewidth=1.5)
            ax.set_title(panel.title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    figure.colorbar(image, ax=axes, shrink=0.8, label='correlation')
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render a figure to an RGB image.

    Args:
        figure: A figure drawn on an Agg canvas (as :func:`correlation_figure` is).

    Returns:
        (H, W, 3) uint8 array.
    """
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call]
    rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[no-untyped-call]
    return rgba[..., :3].copy()


def write_figure_png(
    figure: Figure, path: str | os.PathLike[str], overwrite: bool = False
) -> str:
    """Write a figure as a PNG, atomically.

    The PNG goes to a temporary file in the target directory, which then replaces
    ``path`` in one step, so an interrupted run never leaves a partial file.

    Args:
        figure: The figure.
        path: Output file.
        overwrite: Replace an existing file.

    Returns:
        The path written.

    Raises:
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
        FileNotFoundError: If the directory of ``path`` does not exist.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path!r} exists; pass overwrite=True to replace it')
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'output directory {directory!r} does not exist')
    # os.open rather than tempfile.mkstemp: the PNG gets the user's umask mode
    # (mkstemp's files are 0600).
    tmp = os.path.join(directory, f'.tmp-{secrets.token_hex(4)}.png')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            figure.savefig(f, format='png')
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def log_image(trainer: pl.Trainer, tag: str, image: np.ndarray, step: int) -> int:
    """Send an RGB image to every logger of a trainer that takes images.

    TensorBoard (``SummaryWriter.add_image``) and loggers with a
    ``log_image(key, images, step)`` method (Weights & Biases) take it; others
    (CSV) are skipped.

    Args:
        trainer: The trainer.
        tag: Image name.
        image: (H, W, 3) uint8 array.
        step: Global step.

    Returns:
        The number of loggers that took the image.
    """
    taken = 0
    for logger in trainer.loggers:
        experiment: Any = getattr(logger, 'experiment', None)
        log: Any = getattr(logger, 'log_image', None)
        if hasattr(experiment, 'add_image'):
            experiment.add_image(tag, image, global_step=step, dataformats='HWC')
            taken += 1
        elif callable(log):
            log(key=tag, images=[image], step=step)
            taken += 1
    return taken


class CorrelationPicture(Callback):
    """Log the correlation picture of the validation embeddings once per epoch.

    Collects the projector outputs the task's ``validation_step`` returns (its
    ``embeddings``, every view of every modality; nothing is computed in the
    training step), draws :func:`correlation_figure` at the end of every
    validation epoch (not in the sanity check) and logs it as the image
    ``correlation`` to every logger that takes images. The common block is the
    task's ``common_dim`` attribute when it has one (DeCUR). In multi-process runs
    rank 0 draws its own share of the validation set.

    Attributes:
        last_image: The last picture as an (H, W, 3) uint8 array, or None.
        last_panels: The block-averaged matrices of the last picture.
        samples: The number of samples behind the last picture.
    """

    def __init__(
        self, max_samples: int = 2048, max_size: int = 256, tag: str = 'correlation'
    ) -> None:
        """Initialize a new CorrelationPicture instance.

        Args:
            max_samples: Validation samples collected per epoch (the first ones);
                the correlations are estimated from them.
            max_size: Largest side length of a drawn matrix (block-averaged above).
            tag: Name of the logged image.

        Raises:
            ValueError: If ``max_samples`` < 2 or ``max_size`` < 1.
        """
        if max_samples < 2:
            raise ValueError(f'max_samples must be at least 2, got {max_samples}')
        if max_size < 1:
            raise ValueError(f'max_size must be positive, got {max_size}')
        self.max_samples = max_samples
        self.max_size = max_size
        self.tag = tag
        self.last_image: np.ndarray | None = None
        self.last_panels: list[list[Panel]] = []
        self.samples = 0
        self._collected: dict[str, list[list[Tensor]]] = {}
        self._count = 0

    def on_validation_epoch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        """Forget the previous epoch's embeddings."""
        self._collected = {}
        self._count = 0

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep the batch's embeddings (on the CPU) until ``max_samples``."""
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        if self._count >= self.max_samples:
            return
        if not isinstance(outputs, Mapping) or 'embeddings' not in outputs:
            raise ValueError(
                f'{type(pl_module).__name__}.validation_step returned no '
                "'embeddings'; CorrelationPicture needs a task of torchgeo_decur"
            )
        take = self.max_samples - self._count
        n = 0
        for m, views in outputs['embeddings'].items():
            views = [views] if isinstance(views, Tensor) else list(views)
            kept = [v[:take].detach().float().cpu() for v in views]
            n = kept[0].shape[0]
            self._collected.setdefault(m, []).append(kept)
        self._count += n

    def on_validation_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        """Draw and log the picture of the collected embeddings."""
        if trainer.sanity_checking or not trainer.is_global_zero or not self._collected:
            return
        if self._count < 2:
            return
        # The K x K products run on the task's device, the drawing on the CPU.
        embeddings = {
            m: [torch.cat(v).to(pl_module.device) for v in zip(*batches, strict=True)]
            for m, batches in self._collected.items()
        }
        common_dim = getattr(pl_module, 'common_dim', None)
        self.last_panels = correlation_panels(embeddings, common_dim, self.max_size)
        figure = correlation_figure(
            panels=self.last_panels,
            title=f'epoch {trainer.current_epoch}, step {trainer.global_step}, '
            f'{self._count} validation samples',
        )
        self.last_image = figure_to_array(figure)
        self.samples = self._count
        log_image(trainer, self.tag, self.last_image, trainer.global_step)
        self._collected = {}
