"""Per-band statistics of raw rasters, for scaling data without known statistics."""

from collections.abc import Iterable

import torch
from torch import Tensor

#: Statistics of one modality: ``{'mean': [...], 'std': [...]}`` per band, raw
#: units. The one format of band statistics in code, checkpoints and exports.
BandStats = dict[str, list[float]]


def valid_mask(x: Tensor, nodata: float | None = None) -> Tensor:
    """Which values of a raster are usable: finite and not the nodata value.

    Args:
        x: Values of any shape.
        nodata: The raster's nodata value (None: only non-finite values are invalid;
            NaN: NaN is already non-finite).

    Returns:
        Boolean tensor of ``x``'s shape.
    """
    mask = torch.isfinite(x)
    if nodata is not None and nodata == nodata:  # NaN is caught by isfinite
        mask &= x != nodata
    return mask


class BandStatistics:
    """Streaming per-band mean and standard deviation that ignore invalid values.

    Only valid values count (see :func:`valid_mask`), band by band, so a patch that
    is partly nodata contributes its valid pixels. Each patch's count, mean and sum
    of squared deviations are computed in float64 and merged with Chan et al.'s
    pairwise update, which stays accurate when the spread is small against the
    mean (reflectances of ~10^4 with a std of ~10), where summing squares would
    cancel. Written here because neither torchgeo nor kornia offers a streaming
    per-band estimator that ignores nodata.
    """

    def __init__(self, nodata: float | None = None) -> None:
        """Initialize a new, empty BandStatistics instance.

        Args:
            nodata: Value to ignore in every band (None: only NaN/inf are ignored).
        """
        self.nodata = nodata
        self.samples = 0
        self.count: Tensor | None = None
        self.mean: Tensor | None = None
        self.m2: Tensor | None = None

    def update(self, sample: Tensor) -> None:
        """Add one patch.

        Args:
            sample: Patch of shape (C, H, W), any float or integer dtype, raw units.

        Raises:
            ValueError: If the patch is not 3-D or its band count differs from the
                previous patches'.
        """
        i = self.samples
        if sample.ndim != 3:
            raise ValueError(
                f'sample {i}: expected a patch of shape (C, H, W), got '
                f'{tuple(sample.shape)}'
            )
        x = sample.detach().to('cpu', torch.float64).flatten(1)
        valid = valid_mask(x, self.nodata)
        n_b = valid.sum(dim=1).to(torch.float64)
        x = torch.where(valid, x, 0.0)
        mean_b = x.sum(dim=1) / n_b.clamp(min=1)
        dev = torch.where(valid, x - mean_b[:, None], 0.0)
        m2_b = (dev * dev).sum(dim=1)
        self.samples += 1
        if self.count is None or self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        if x.shape[0] != self.count.shape[0]:
            raise ValueError(
                f'sample {i} has {x.shape[0]} bands, the previous ones '
                f'{self.count.shape[0]}'
            )
        total = self.count + n_b
        delta = mean_b - self.mean
        safe = total.clamp(min=1)
        self.mean = self.mean + delta * n_b / safe
        self.m2 = self.m2 + m2_b + delta * delta * self.count * n_b / safe
        self.count = total

    def compute(self) -> tuple[Tensor, Tensor]:
        """Mean and population standard deviation of every band so far.

        Returns:
            ``(mean, std)``, each float64 of shape (C,).

        Raises:
            ValueError: If no patch was added or a band has no valid value.
        """
        if self.count is None or self.mean is None or self.m2 is None:
            raise ValueError('cannot estimate band statistics from zero samples')
        empty = [b for b in range(self.count.shape[0]) if self.count[b] == 0]
        if empty:
            raise ValueError(
                f'bands {empty} (0-based) hold no valid value (all '
                f'nodata={self.nodata} or non-finite) in the {self.samples} sampled '
                'patches'
            )
        return self.mean.clone(), (self.m2 / self.count).sqrt()


def estimate_band_statistics(
    samples: Iterable[Tensor], nodata: float | None = None
) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of every band over a stream of patches.

    See :class:`BandStatistics`; values equal to ``nodata`` and non-finite values
    are left out band by band.

    Args:
        samples: Patches of shape (C, H, W), the same C for all, in raw units.
        nodata: Value to ignore in every band (None: only NaN/inf are ignored).

    Returns:
        ``(mean, std)``, each float64 of shape (C,); ``std`` is the population
        (biased) standard deviation, as used by the DeCUR input scaling.

    Raises:
        ValueError: If there are no samples, a sample is not 3-D, the band count
            changes, or a band has no valid value at all.
    """
    stats = BandStatistics(nodata)
    for sample in samples:
        stats.update(sample)
    return stats.compute()


__all__ = ('BandStatistics', 'BandStats', 'estimate_band_statistics', 'valid_mask')
