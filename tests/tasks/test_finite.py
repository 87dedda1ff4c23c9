"""Non-finite losses stop training; non-finite weights are never saved."""

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from torchgeo_decur import DeCURTask
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
from torchgeo_decur.tasks.finite import (
    NonFiniteError,
    check_finite_checkpoint,
    check_finite_outputs,
)

from ..conftest import DATA, quiet_trainer

TINY: dict[str, Any] = {
    'model': 'resnet18',
    'projector_dims': [32, 32],
    'common_dim': 24,
    'crop_size': 32,
}


def batch(n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        'image_s1': torch.rand(n, 4, 40, 40, generator=g),
        'image_s2': torch.rand(n, 26, 40, 40, generator=g),
    }


def test_finite_outputs_pass() -> None:
    z = [torch.ones(2, 3), torch.ones(2, 3)]
    check_finite_outputs(0, {'loss': torch.tensor(1.0)}, {'s1': z, 's2': z}, batch())


def test_nan_input_names_step_term_and_modality() -> None:
    data = batch()
    data['image_s1'][0, 0, 0, 0] = float('-inf')
    z = [torch.ones(2, 3)] * 2
    nan = [torch.full((2, 3), float('nan'))] * 2
    outputs = {'loss': torch.tensor(float('nan')), 'common': torch.tensor(0.5)}
    with pytest.raises(NonFiniteError) as info:
        check_finite_outputs(7, outputs, {'s1': nan, 's2': z}, data)
    message = str(info.value)
    assert 'step 7' in message
    assert 'loss = nan' in message
    assert 'common' not in message.split(';')[0]  # finite terms are not blamed
    assert "modality 's1': input image_s1 holds 1 -inf" in message
    assert "'s2'" not in message
    assert 'normalization' in message


def test_diverged_embeddings_named() -> None:
    z = [torch.ones(2, 3)] * 2
    inf = [torch.full((2, 3), float('inf'))] * 2
    outputs = {'loss': torch.tensor(1.0), 'intra_s2': torch.tensor(float('inf'))}
    with pytest.raises(NonFiniteError, match=r'step 3: intra_s2 = inf') as info:
        check_finite_outputs(3, outputs, {'s1': z, 's2': inf}, batch())
    assert "modality 's2': embeddings hold 12 +inf of 12" in str(info.value)
    assert 'learning rate' in str(info.value)


def test_checkpoint_check() -> None:
    good = {'state_dict': {'w': torch.ones(3), 'n': torch.tensor(5)}}
    check_finite_checkpoint(good, 1)
    bad = {'state_dict': {'a.w': torch.tensor([1.0, float('nan')]), 'b': torch.ones(1)}}
    with pytest.raises(NonFiniteError, match=r'step 9: 1 weight.*a\.w \(1 NaN'):
        check_finite_checkpoint(bad, 9)


def datamodule(**kwargs: Any) -> SSL4EOS12PairsDataModule:
    return SSL4EOS12PairsDataModule(
        root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=2, **kwargs
    )


def test_training_stops_on_nan_loss() -> None:
    # Raw S1 with -inf dB (normalization none): the first step stops, after a
    # warning from the data module. The -inf pixel must fall inside the random
    # crops of step 0: the seed fixes them.
    torch.manual_seed(2)
    task = DeCURTask(**TINY)
    trainer = quiet_trainer(max_steps=2)
    with pytest.warns(UserWarning, match="normalization='none': image_s1 holds"):
        with pytest.raises(NonFiniteError, match=r"step 0: loss = nan.*'s1'"):
            trainer.fit(task, datamodule(normalization='none'))
    assert trainer.global_step == 0  # no optimizer step on the NaN loss


def test_non_finite_weights_are_never_saved(tmp_path: Path) -> None:
    task = DeCURTask(**TINY)
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(task, datamodule())
    good = tmp_path / 'good.ckpt'
    trainer.save_checkpoint(good)
    with torch.no_grad():
        task.backbones['s2'].conv1.weight[0, 0, 0, 0] = float('nan')
    bad = tmp_path / 'bad.ckpt'
    with pytest.raises(NonFiniteError, match=r'backbones\.s2\.conv1\.weight'):
        trainer.save_checkpoint(bad)
    assert not bad.exists()
    state = torch.load(good, weights_only=True, map_location='cpu')['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
