"""Channel bookkeeping between datasets and checkpoints.

Downstream datasets rarely deliver the channels a checkpoint was trained on in the
same order and number: BigEarthNet has no Sentinel-2 B10 (the 13-band checkpoints
expect one), GeoNRW's RGB comes as R, G, B while the DeCUR checkpoints were trained
on OpenCV's B, G, R, and the GeoNRW DEM encoders take the single height channel
replicated three times (OpenCV's gray-to-RGB in the reference loaders). These modules fix that on
batches of shape (N, C, H, W) or single samples (C, H, W).
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _check_image(x: Tensor, what: str) -> None:
    """Raise a ValueError unless ``x`` is (C, H, W) or (N, C, H, W)."""
    if x.ndim not in (3, 4):
        raise ValueError(
            f'{what}: expected (C, H, W) or (N, C, H, W), got {tuple(x.shape)}'
        )


class InsertChannel(nn.Module):
    """Insert a constant channel at a fixed position.

    With ``index=10, value=0`` after [0, 1] scaling this reproduces how the DeCUR
    BigEarthNet code fed 12-band L2A patches to 13-band L1C checkpoints: an all-zero
    B10 slot, i.e. the bottom of the B10 clip window rather than its mean.
    """

    def __init__(self, index: int, value: float = 0.0, in_channels: int | None = None):
        """Initialize a new InsertChannel instance.

        Args:
            index: Position of the new channel in the output (0 ≤ index ≤ C).
            value: Constant value of the new channel.
            in_channels: Expected input channel count C (checked when given).
        """
        super().__init__()
        self.index = index
        self.value = value
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        """Insert the channel.

        Args:
            x: Tensor of shape (C, H, W) or (N, C, H, W).

        Returns:
            Tensor with C + 1 channels.

        Raises:
            ValueError: If the input is not an image (batch), has an unexpected
                channel count, or ``index`` is outside [0, C].
        """
        _check_image(x, type(self).__name__)
        dim = x.ndim - 3
        channels = x.shape[dim]
        if self.in_channels is not None and channels != self.in_channels:
            raise ValueError(
                f'{type(self).__name__}: expected {self.in_channels} channels, '
                f'got {channels} (shape {tuple(x.shape)})'
            )
        if not 0 <= self.index <= channels:
            raise ValueError(
                f'{type(self).__name__}: cannot insert at index {self.index} into '
                f'{channels} channels'
            )
        shape = list(x.shape)
        shape[dim] = 1
        fill = torch.full(shape, self.value, dtype=x.dtype, device=x.device)
        before, after = torch.split(x, [self.index, channels - self.index], dim=dim)
        return torch.cat([before, fill, after], dim=dim)

    def extra_repr(self) -> str:
        """Summarise the settings."""
        return f'index={self.index}, value={self.value}'


class SelectChannels(nn.Module):
    """Pick (and reorder) channels, e.g. ``[2, 1, 0]`` turns RGB into BGR."""

    def __init__(self, indices: Sequence[int]) -> None:
        """Initialize a new SelectChannels instance.

        Args:
            indices: Input channel index of every output channel.

        Raises:
            ValueError: If ``indices`` is empty.
        """
        super().__init__()
        if len(indices) == 0:
            raise ValueError('SelectChannels needs at least one index')
        self.indices = [int(i) for i in indices]

    def forward(self, x: Tensor) -> Tensor:
        """Select the channels.

        Args:
            x: Tensor of shape (C, H, W) or (N, C, H, W).

        Returns:
            Tensor with ``len(indices)`` channels.

        Raises:
            ValueError: If an index is out of range for the input.
        """
        _check_image(x, type(self).__name__)
        dim = x.ndim - 3
        channels = x.shape[dim]
        bad = [i for i in self.indices if not 0 <= i < channels]
        if bad:
            raise ValueError(
                f'{type(self).__name__}: indices {bad} out of range for {channels} '
                'channels'
            )
        index = torch.tensor(self.indices, device=x.device)
        return x.index_select(dim, index)

    def extra_repr(self) -> str:
        """Summarise the settings."""
        return f'indices={self.indices}'


class RepeatChannels(nn.Module):
    """Replicate a single-channel image, like OpenCV's gray-to-RGB in ``ToTensor``."""

    def __init__(self, repeats: int, hint: str = '') -> None:
        """Initialize a new RepeatChannels instance.

        Args:
            repeats: Output channel count for a one-channel input.
            hint: Sentence appended to the error for a multi-channel input (what
                the caller should pass instead).

        Raises:
            ValueError: If ``repeats`` is not positive.
        """
        super().__init__()
        if repeats < 1:
            raise ValueError(f'repeats must be positive, got {repeats}')
        self.repeats = repeats
        self.hint = hint

    def forward(self, x: Tensor) -> Tensor:
        """Replicate the channel.

        Args:
            x: Tensor of shape (1, H, W) or (N, 1, H, W).

        Returns:
            Tensor with ``repeats`` identical channels.

        Raises:
            ValueError: If the input has more than one channel.
        """
        _check_image(x, type(self).__name__)
        dim = x.ndim - 3
        if x.shape[dim] != 1:
            raise ValueError(
                f'{type(self).__name__}: expected one channel, got shape '
                f'{tuple(x.shape)}' + (f'; {self.hint}' if self.hint else '')
            )
        sizes = [1] * x.ndim
        sizes[dim] = self.repeats
        return x.repeat(*sizes)

    def extra_repr(self) -> str:
        """Summarise the settings."""
        return f'repeats={self.repeats}'
