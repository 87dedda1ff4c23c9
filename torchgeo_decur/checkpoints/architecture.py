"""The architecture a task checkpoint records for its encoders.

A task's hyper-parameters hold what the user passed; what was resolved from the
weights (the architecture, channel counts and backbone options of a Weights member,
an export or another checkpoint) is saved beside them under :data:`ARCHITECTURE_KEY`.
Every reader of task checkpoints asks :func:`task_architecture`.
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
