"""Registration of the DeCUR builders and Weights enums with torchgeo.

torchgeo 0.10 keeps its model registry in two module-level dictionaries,
``torchgeo.models.api._model`` (name → builder) and ``_model_weights`` (name or
builder → Weights enum), and offers no public registration call, so we add our
entries to them. Afterwards ``torchgeo.models.get_weight(str(member))``,
``get_model``, ``get_model_weights`` and ``list_models`` know every DeCUR member,
and ``get_model('decur', weights=...)`` builds an encoder of any architecture
from weights that name it (:func:`~.builders.decur`).
"""

import warnings
from collections.abc import Callable

from torch import nn
from torchvision.models._api import WeightsEnum

from .builders import (
    decur,
    decur_mit_b2,
    decur_mit_b5,
    decur_resnet50,
    decur_resnet50_rda,
    decur_vit_small_patch16_224,
)
from .enums import (
    DeCURMiTB2_Weights,
    DeCURMiTB5_Weights,
    DeCURResNet50_Weights,
    DeCURResNet50RDA_Weights,
    DeCURViTSmall16_Weights,
)

#: Builder name → (builder, Weights enum). Every builder is registered as
#: ``decur_<timm name>``; the timm names torchgeo does not use itself
#: (``resnet50_rda``, ``mit_b2``, ``mit_b5``) are registered too, so that
#: ``get_model(member.meta['model'], weights=member)`` works for every member
#: (``resnet50`` and ``vit_small_patch16_224`` go to torchgeo's own builders, which
#: load our members as they are).
BUILDERS: dict[str, tuple[Callable[..., nn.Module], type[WeightsEnum]]] = {
    'decur_resnet50': (decur_resnet50, DeCURResNet50_Weights),
    'decur_resnet50_rda': (decur_resnet50_rda, DeCURResNet50RDA_Weights),
    'decur_vit_small_patch16_224': (
        decur_vit_small_patch16_224,
        DeCURViTSmall16_Weights,
    ),
    'decur_mit_b2': (decur_mit_b2, DeCURMiTB2_Weights),
    'decur_mit_b5': (decur_mit_b5, DeCURMiTB5_Weights),
    'resnet50_rda': (decur_resnet50_rda, DeCURResNet50RDA_Weights),
    'mit_b2': (decur_mit_b2, DeCURMiTB2_Weights),
    'mit_b5': (decur_mit_b5, DeCURMiTB5_Weights),
}


#: Builders without a Weights enum of their own: ``decur`` builds any
#: architecture, named by its weights (an export, a task checkpoint or a member).
ANY_ARCHITECTURE: dict[str, Callable[..., nn.Module]] = {'decur': decur}


def register_with_torchgeo() -> None:
    """Add the DeCUR builders and enums to torchgeo's registry (idempotent).

    A name that torchgeo already uses for something else is left alone, with a
    warning.
    """
    from torchgeo.models import api

    entries: dict[str, tuple[Callable[..., nn.Module], type[WeightsEnum] | None]]
    entries = {**BUILDERS, **{n: (b, None) for n, b in ANY_ARCHITECTURE.items()}}
    for name, (builder, enum) in entries.items():
        current = api._model.get(name)
        if current is not None and current is not builder:
            warnings.warn(
                f'torchgeo already registers a model {name!r}; the DeCUR builder is '
                'not registered under that name',
                stacklevel=2,
            )
            continue
        api._model[name] = builder
        if enum is not None:
            api._model_weights[name] = enum
            api._model_weights[builder] = enum


__all__ = ('ANY_ARCHITECTURE', 'BUILDERS', 'register_with_torchgeo')
