from typing import Any

import pytest
import torch

import torchgeo_decur
from torchgeo_decur import (
    MultimodalBarlowTwinsTask,
    MultimodalCLIPTask,
    MultimodalSimCLRTask,
    MultimodalSSLTask,
    MultimodalVICRegTask,
)
from torchgeo_decur.losses import (
    barlow_twins_loss,
    clip_loss,
    ntxent_loss,
    vicreg_loss,
)

from .test_decur import batch

TINY: dict[str, Any] = {
    'model': 'resnet18',
    'projector_dims': [32, 32],
    'crop_size': 32,
}

# task class, loss function of its embeddings, monitors it logs
CASES = {
    'simclr': (
        MultimodalSimCLRTask,
        lambda z1, z2: ntxent_loss(z1, z2, 0.1).total,
        ['positive_similarity', 'negative_similarity', 'top1'],
    ),
    'clip': (
        MultimodalCLIPTask,
        lambda z1, z2: clip_loss(z1, z2, 1 / 0.07).total,
        ['positive_similarity', 'negative_similarity', 'top1', 'temperature'],
    ),
    'barlow_twins': (
        MultimodalBarlowTwinsTask,
        lambda z1, z2: barlow_twins_loss(z1, z2).total,
        ['cross_diag'],
    ),
    'vicreg': (
        MultimodalVICRegTask,
        lambda z1, z2: vicreg_loss(z1, z2).total,
        ['invariance', 'variance', 'covariance'],
    ),
}


def test_exported_from_package() -> None:
    for name in (
        'MultimodalSimCLRTask',
        'MultimodalCLIPTask',
        'MultimodalBarlowTwinsTask',
        'MultimodalVICRegTask',
    ):
        assert hasattr(torchgeo_decur, name)
        assert hasattr(torchgeo_decur.tasks, name)


@pytest.mark.parametrize('case', list(CASES))
def test_training_step_logs_loss_and_monitors(case: str) -> None:
    cls, loss_fn, monitors = CASES[case]
    task = cls(**TINY)
    assert isinstance(task, MultimodalSSLTask)
    assert task.num_views == 1
    logged: dict[str, torch.Tensor] = {}
    task.log = lambda name, value, **kw: logged.__setitem__(name, value)  # type: ignore[method-assign]

    # Capture the embeddings that reach the loss to recompute it independently.
    seen: dict[str, list[torch.Tensor]] = {}
    compute = task.compute_loss

    def spy(embeddings: Any) -> dict[str, torch.Tensor]:
        seen.update(embeddings)
        return compute(embeddings)

    task.compute_loss = spy  # type: ignore[method-assign]
    loss = task.training_step(batch(views=2), 0)
    assert [len(v) for v in seen.values()] == [1, 1]  # one view per modality
    assert torch.allclose(loss, loss_fn(seen['s1'][0], seen['s2'][0]), rtol=1e-5)
    expected = {'train_loss', 'train_std_s1', 'train_std_s2'} | {
        f'train_{m}' for m in monitors
    }
    assert set(logged) == expected
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logged.values())
    loss.backward()
    for m in ('s1', 's2'):
        assert task.backbones[m].conv1.weight.grad is not None
        assert task.projectors[m][0].weight.grad is not None


@pytest.mark.parametrize('case', list(CASES))
def test_validation_step_logs_val_metrics(case: str) -> None:
    cls, _, monitors = CASES[case]
    task = cls(**TINY).eval()
    logged: dict[str, torch.Tensor] = {}
    task.log = lambda name, value, **kw: logged.__setitem__(name, value)  # type: ignore[method-assign]
    with torch.no_grad():
        out = task.validation_step(batch(views=1), 3)
        again = task.validation_step(batch(views=1), 3)
    expected = {'val_loss', 'val_std_s1', 'val_std_s2'} | {f'val_{m}' for m in monitors}
    assert set(logged) == expected
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logged.values())
    assert torch.equal(out['loss'], again['loss'])
    assert set(out['embeddings']) == {'s1', 's2'}


def test_defaults() -> None:
    simclr = MultimodalSimCLRTask(model='resnet18')
    assert list(simclr.hparams['projector_dims']) == [512, 128]
    assert simclr.criterion.temperature == 0.1
    clip = MultimodalCLIPTask(model='resnet18')
    assert list(clip.hparams['projector_dims']) == [512, 128]
    assert clip.criterion.temperature == pytest.approx(0.07)
    bt = MultimodalBarlowTwinsTask(model='resnet18', projector_dims=[64, 64])
    assert bt.criterion.lambd == 0.0051
    vic = MultimodalVICRegTask(model='resnet18', projector_dims=[64, 64])
    assert (vic.criterion.sim_coeff, vic.criterion.std_coeff) == (25.0, 25.0)
    assert vic.criterion.cov_coeff == 1.0
    for task in (bt, vic, simclr, clip):
        assert task.criterion.gather_distributed is True


def test_clip_temperature_is_learned_without_weight_decay() -> None:
    task = MultimodalCLIPTask(weight_decay=0.1, **TINY)
    param = task.criterion.log_scale
    assert any(p is param for p in task.parameters())
    opt = task.build_optimizer()
    (group,) = [g for g in opt.param_groups if any(p is param for p in g['params'])]
    assert group['params'] == [param]  # its own group: 1-D parameters are decayed
    assert group['weight_decay'] == 0.0
    assert group['lr'] == task.parameter_groups()[1]['lr']  # lr_biases
    task.log = lambda *a, **k: None  # type: ignore[method-assign]
    task.training_step(batch(views=1), 0).backward()
    before = float(param.detach())
    opt.step()
    assert float(param.detach()) != before

    fixed = MultimodalCLIPTask(learnable_temperature=False, temperature=0.5, **TINY)
    assert all(p is not fixed.criterion.log_scale for p in fixed.parameters())
    assert 'criterion.log_scale' in fixed.state_dict()


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match=r'temperature must be > 0, got -0\.1'):
        MultimodalSimCLRTask(temperature=-0.1, **TINY)
    with pytest.raises(ValueError, match='temperature must be > 0'):
        MultimodalCLIPTask(temperature=0.0, **TINY)
    with pytest.raises(ValueError, match='two distinct modalities'):
        MultimodalVICRegTask(modalities=['s1', 's1'], **TINY)


def test_baseline_loads_own_checkpoint(tmp_path: Any) -> None:
    src = MultimodalBarlowTwinsTask(**TINY)
    ckpt = tmp_path / 'bt.ckpt'
    torch.save({'state_dict': src.state_dict()}, ckpt)
    task = MultimodalBarlowTwinsTask(weights=str(ckpt), **TINY).eval()
    x = torch.rand(2, 2, 32, 32)
    assert torch.equal(task.backbones['s1'](x), src.eval().backbones['s1'](x))
