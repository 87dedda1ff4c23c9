"""Losses for multimodal self-supervised pretraining."""

from .barlow_twins import BarlowTwinsLoss, BarlowTwinsLossOutput, barlow_twins_loss
from .clip import CLIPLoss, clip_loss
from .contrastive import ContrastiveLossOutput
from .decur import (
    DeCURLoss,
    DeCURLossOutput,
    DeCURMultiLossOutput,
    batch_standardize,
    decur_loss,
    decur_loss_multi,
)
from .distributed import gather_batch, is_distributed
from .ntxent import NTXentLoss, ntxent_loss
from .vicreg import VICRegLoss, VICRegLossOutput, vicreg_loss

__all__ = (
    'BarlowTwinsLoss',
    'BarlowTwinsLossOutput',
    'CLIPLoss',
    'ContrastiveLossOutput',
    'DeCURLoss',
    'DeCURLossOutput',
    'DeCURMultiLossOutput',
    'NTXentLoss',
    'VICRegLoss',
    'VICRegLossOutput',
    'barlow_twins_loss',
    'batch_standardize',
    'clip_loss',
    'decur_loss',
    'decur_loss_multi',
    'gather_batch',
    'is_distributed',
    'ntxent_loss',
    'vicreg_loss',
)
