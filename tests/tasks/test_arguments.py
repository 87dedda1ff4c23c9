"""The constructor arguments of the tasks: few, and only the current names."""

import inspect

import pytest

from torchgeo_decur import DeCURTask
from torchgeo_decur.tasks import (
    MultimodalBarlowTwinsTask,
    MultimodalClassificationTask,
    MultimodalCLIPTask,
    MultimodalSegmentationTask,
    MultimodalSimCLRTask,
    MultimodalVICRegTask,
)

TINY = {
    'model': 'resnet18',
    'projector_dims': [32, 32],
    'common_dim': 24,
    'crop_size': 32,
}


def argument_count(cls: type) -> int:
    """Named constructor arguments of a class and every class it extends."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.name != 'self' and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                names.add(p.name)
    return len(names)


def test_decur_task_takes_at_most_18_arguments() -> None:
    assert argument_count(DeCURTask) <= 18
    for cls in (
        MultimodalSimCLRTask,
        MultimodalCLIPTask,
        MultimodalBarlowTwinsTask,
        MultimodalVICRegTask,
        MultimodalClassificationTask,
        MultimodalSegmentationTask,
    ):
        assert argument_count(cls) <= 19, cls


@pytest.mark.parametrize('name', ['bogus', 'warmup_epochs', 'loss_method'])
def test_unknown_argument_is_a_type_error(name: str) -> None:
    # Names of unreleased development versions are unknown names like any other.
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{name}'"):
        DeCURTask(**{name: 1}, **TINY)


def test_downstream_unknown_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'rda_semantics'"):
        MultimodalClassificationTask(
            modalities=['s1'], model='resnet18', rda_semantics='transfer'
        )
