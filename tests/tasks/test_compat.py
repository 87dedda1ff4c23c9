"""Arguments of earlier versions: folded into their new place, with a warning."""

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


def test_moved_arguments_are_folded_and_saved_under_new_names() -> None:
    with pytest.warns(FutureWarning) as record:
        task = DeCURTask(
            lr_biases=0.01,
            decay_biases=False,
            momentum=0.8,
            warmup_epochs=2,
            lr_schedule_interval='epoch',
            lr_schedule_epochs=7,
            rda_semantics='pretraining',
            loss_method='gram',
            gather_distributed=True,
            channels_last=False,
            **TINY,
        )
    messages = [str(w.message) for w in record]
    assert any('use optimizer_options: {lr_biases: ...}' in m for m in messages)
    assert any('loss_method=...) is deprecated and ignored' in m for m in messages)
    assert task.hparams['optimizer_options'] == {
        'lr_biases': 0.01,
        'decay_biases': False,
        'momentum': 0.8,
    }
    assert task.hparams['lr_schedule'] == {
        'warmup_epochs': 2,
        'interval': 'epoch',
        'epochs': 7,
    }
    assert task.hparams['backbone_kwargs'] == {'rda_semantics': 'pretraining'}
    for old in ('lr_biases', 'warmup_epochs', 'loss_method', 'channels_last'):
        assert old not in task.hparams
        assert old not in task.hparams_initial
    # The folded values are the ones used.
    biases = task.build_optimizer().param_groups[1]
    assert (biases['lr'], biases['weight_decay']) == (0.01, 0.0)
    # Explicit new values win over old ones.
    with pytest.warns(FutureWarning):
        task = DeCURTask(lr_biases=0.01, optimizer_options={'lr_biases': 0.02}, **TINY)
    assert task.hparams['optimizer_options'] == {'lr_biases': 0.02}


def test_downstream_rda_semantics_moves_into_backbone_kwargs() -> None:
    with pytest.warns(FutureWarning, match='use backbone_kwargs'):
        task = MultimodalClassificationTask(
            modalities=['s1'], model='resnet18', rda_semantics='transfer'
        )
    assert task.hparams['backbone_kwargs'] == {'rda_semantics': 'transfer'}
    assert 'rda_semantics' not in task.hparams


def test_unknown_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        DeCURTask(bogus=1, **TINY)
