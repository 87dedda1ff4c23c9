"""Speed switches that leave the numbers unchanged, as Lightning callbacks.

They are callbacks rather than task arguments because they do not change what is
trained, only how fast: a config adds them under ``trainer.callbacks``::

    trainer:
      callbacks:
        - class_path: torchgeo_decur.tasks.performance.ChannelsLast
"""

import lightning.pytorch as pl
import torch
from torch import nn


def to_channels_last(module: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer of ``module`` channels-last (NHWC).

    Convolutions whose weight is channels-last run channels-last, which
    tensor-core GPUs do faster (especially under bf16); the values do not change
    and later layers follow the layout of their input.

    Args:
        module: The model (converted in place).

    Returns:
        ``module``.
    """
    return module.to(memory_format=torch.channels_last)


class ChannelsLast(pl.Callback):
    """Train with channels-last (NHWC) weights; see :func:`to_channels_last`."""

    def setup(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str
    ) -> None:
        """Convert the model before training, validation or prediction starts.

        Args:
            trainer: The Trainer (unused).
            pl_module: The task.
            stage: ``'fit'``, ``'validate'``, ``'test'`` or ``'predict'``.
        """
        to_channels_last(pl_module)


__all__ = ('ChannelsLast', 'to_channels_last')
