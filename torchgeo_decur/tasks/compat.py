"""Task arguments that moved or went away, still accepted with a FutureWarning.

Older configs, scripts and checkpoints (whose saved hyper-parameters rebuild the
task) pass these names; they are folded into their new place so such a task
trains exactly as before.
"""

import warnings
from collections.abc import Mapping
from typing import Any

#: Old argument → (new argument, key inside it).
MOVED: dict[str, tuple[str, str]] = {
    'lr_biases': ('optimizer_options', 'lr_biases'),
    'decay_biases': ('optimizer_options', 'decay_biases'),
    'momentum': ('optimizer_options', 'momentum'),
    'warmup_epochs': ('lr_schedule', 'warmup_epochs'),
    'lr_schedule_interval': ('lr_schedule', 'interval'),
    'lr_schedule_epochs': ('lr_schedule', 'epochs'),
    'rda_semantics': ('backbone_kwargs', 'rda_semantics'),
    'shared_rda': ('backbone_kwargs', 'shared_rda'),
}

#: Old argument → why it is ignored now.
DROPPED: dict[str, str] = {
    'loss_method': 'the loss picks the fastest exact method itself',
    'gather_distributed': (
        'losses always use the global batch of all ranks (no effect on one process)'
    ),
    'channels_last': (
        'add the torchgeo_decur.tasks.performance.ChannelsLast callback to the '
        'Trainer instead'
    ),
}


def fold_moved_arguments(
    task: str,
    given: Mapping[str, Any],
    current: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, dict[str, Any] | None]:
    """Put old arguments into the mappings that replaced them.

    Args:
        task: Class name, for the messages.
        given: The old arguments (``**kwargs`` of the task).
        current: The new mapping arguments as given, by name (only those the
            task has).

    Returns:
        The new mapping arguments with the old values folded in (explicit new
        values win), by name; unchanged when nothing was folded into them.

    Raises:
        TypeError: For a name that is neither old nor new.

    Warns:
        FutureWarning: For every old name, saying where it went.
    """
    out: dict[str, dict[str, Any] | None] = {
        name: None if value is None else dict(value) for name, value in current.items()
    }
    for name, value in given.items():
        if name in MOVED and MOVED[name][0] in out:
            target, key = MOVED[name]
            folded = out[target] or {}
            folded.setdefault(key, value)
            out[target] = folded
            warnings.warn(
                f'{task}({name}=...) is deprecated; use {target}: {{{key}: ...}}',
                FutureWarning,
                stacklevel=4,
            )
        elif name in DROPPED:
            warnings.warn(
                f'{task}({name}=...) is deprecated and ignored: {DROPPED[name]}',
                FutureWarning,
                stacklevel=4,
            )
        else:
            raise TypeError(
                f'{task}.__init__() got an unexpected keyword argument {name!r}'
            )
    return out


__all__ = ('DROPPED', 'MOVED', 'fold_moved_arguments')
