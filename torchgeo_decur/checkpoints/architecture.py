"""What a task checkpoint records about its encoders and their inputs.

A task's hyper-parameters hold what the user passed; what was resolved from the
weights (the architecture, channel counts and backbone options of a Weights member,
an export or another checkpoint) is saved beside them under :data:`ARCHITECTURE_KEY`.
Every reader of task checkpoints asks :func:`task_architecture`, and
:func:`data_statistics` for the band statistics the inputs were scaled with.
"""

from collections.abc import Mapping
from typing import Any

#: Checkpoint entry holding the resolved encoder architecture of a task:
#: ``{'modalities': [...], 'model': str, 'in_channels': {m: C},
#: 'backbone_kwargs': {...}}``.
ARCHITECTURE_KEY = 'torchgeo_decur'

#: The entries of the record (and of the hyper-parameters they resolve).
ARCHITECTURE_FIELDS = ('modalities', 'model', 'in_channels', 'backbone_kwargs')


def task_architecture(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """What a task checkpoint says about its encoders.

    Args:
        checkpoint: A loaded Lightning checkpoint (any mapping).

    Returns:
        ``modalities``, ``model``, ``in_channels`` and ``backbone_kwargs`` as
        recorded under :data:`ARCHITECTURE_KEY`, else as the hyper-parameters
        give them; entries neither holds are absent.
    """
    hparams = checkpoint.get('hyper_parameters')
    recorded = checkpoint.get(ARCHITECTURE_KEY)
    out: dict[str, Any] = {}
    for source in (hparams, recorded):
        if isinstance(source, Mapping):
            out |= {
                k: source[k]
                for k in ARCHITECTURE_FIELDS
                if k in source and source[k] is not None
            }
    return out


#: The input scaling that goes with stored per-band statistics (raw units).
SCALING_FORMULA = 'clip((x - (mean - 2 std)) / (4 std), 0, 1) per band, raw units'


def data_statistics(checkpoint: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Per-modality band statistics the data module scaled the inputs with.

    Data modules of own data (rasters, chips) keep them in their
    hyper-parameters (``statistics``); the SSL4EO-S12 data module returns its
    sensors' statistics from ``state_dict``, which Lightning stores under the data
    module's class name. Both scale with :data:`SCALING_FORMULA`.

    Args:
        checkpoint: A loaded Lightning checkpoint (any mapping).

    Returns:
        ``{modality: {'mean': [...], 'std': [...]}}`` (raw units), or ``{}`` when
        the checkpoint records none.
    """
    hparams = checkpoint.get('datamodule_hyper_parameters')
    stats = hparams.get('statistics') if isinstance(hparams, Mapping) else None
    if isinstance(stats, Mapping) and stats:
        return dict(stats)
    for key, value in checkpoint.items():
        if key == 'hyper_parameters' or not isinstance(value, Mapping):
            continue
        stats = value.get('statistics')
        if isinstance(stats, Mapping) and stats:
            return dict(stats)
    return {}
