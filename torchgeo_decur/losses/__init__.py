"""Losses for multimodal self-supervised pretraining."""

from .decur import DeCURLoss, DeCURLossOutput, batch_standardize, decur_loss
from .distributed import gather_batch, is_distributed

__all__ = (
    'DeCURLoss',
    'DeCURLossOutput',
    'batch_standardize',
    'decur_loss',
    'gather_batch',
    'is_distributed',
)
