"""Checkpoint files: safe reading, atomic writing, and state-dict layouts.

:mod:`.files` reads any checkpoint with ``weights_only=True`` and writes files
atomically; :mod:`.layouts` converts between the released DeCUR layouts and this
package's (timm) key names. Resolving a weights spec (a Weights member, an export,
a task checkpoint) into encoders is :mod:`torchgeo_decur.weights.loading`.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .files import read_checkpoint, save_atomically, unwrap_state_dict
    from .layouts import (
        load_encoder_state,
        load_exact,
        remap_backbone_state_dict,
        select_encoder_state_dict,
        split_joint_state_dict,
        strip_prefix,
    )

# Hidden from type checkers: they see the names through the TYPE_CHECKING
# imports above, so importing a name that does not exist is an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            '.files': ('read_checkpoint', 'save_atomically', 'unwrap_state_dict'),
            '.layouts': (
                'load_encoder_state',
                'load_exact',
                'remap_backbone_state_dict',
                'select_encoder_state_dict',
                'split_joint_state_dict',
                'strip_prefix',
            ),
        },
    )

__all__ = (
    'load_encoder_state',
    'load_exact',
    'read_checkpoint',
    'remap_backbone_state_dict',
    'save_atomically',
    'select_encoder_state_dict',
    'split_joint_state_dict',
    'strip_prefix',
    'unwrap_state_dict',
)
