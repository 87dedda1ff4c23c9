import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim import SGD, AdamW
from torch.optim.lr_scheduler import MultiStepLR
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import (
    multiclass_jaccard_index,
    multilabel_average_precision,
)
from torchvision.models._api import Weights, WeightsEnum

from torchgeo_decur import (
    DeCURTask,
    MultimodalClassificationTask,
    MultimodalSegmentationTask,
)
from torchgeo_decur.datamodules import BigEarthNetMMDataModule
from torchgeo_decur.models import Projector, build_backbone

from ..conftest import DATA, quiet_trainer

URL = 'https://huggingface.co/example/resolve/main/{}'


class FakeWeights(WeightsEnum):  # type: ignore[misc]
    JOINT = Weights(
        url=URL.format('rn18_joint.pth'),
        transforms=None,
        meta={'model': 'resnet18', 'modality': ('s1', 's2'), 'in_chans': (2, 13)},
    )
    S2 = Weights(
        url=URL.format('rn18_s2.pth'),
        transforms=None,
        meta={'model': 'resnet18', 'modality': 's2', 'in_chans': 13},
    )
    RN50 = Weights(
        url=URL.format('rn50_s2.pth'),
        transforms=None,
        meta={'model': 'resnet50', 'modality': 's2', 'in_chans': 13},
    )


def encoder_state(in_chans: int, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_backbone('resnet18', in_chans).state_dict()


def reference_joint(
    s1: dict[str, torch.Tensor], s2: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A joint file in the layout of the reference DeCUR code."""
    sd = {f'module.backbone_1.{k}': v for k, v in s1.items()}
    sd.update({f'module.backbone_2.{k}': v for k, v in s2.items()})
    projector = Projector(512, [32, 32]).state_dict()
    for i in (1, 2):
        sd.update({f'module.projector{i}.{k}': v for k, v in projector.items()})
    sd['module.bn.running_mean'] = torch.zeros(32)
    sd['module.bn.running_var'] = torch.ones(32)
    return sd


def same(module: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = module.state_dict()
    return set(own) <= set(state) and all(torch.equal(own[k], state[k]) for k in own)


@pytest.fixture
def states() -> dict[str, dict[str, torch.Tensor]]:
    return {'s1': encoder_state(2, 1), 's2': encoder_state(13, 2)}


def test_weights_from_a_decur_task_checkpoint(tmp_path: Path) -> None:
    decur = DeCURTask(model='resnet18', projector_dims=[32, 32], common_dim=24)
    path = tmp_path / 'decur.ckpt'
    torch.save({'state_dict': decur.state_dict(), 'epoch': 3}, path)
    clf = MultimodalClassificationTask(model='resnet18', weights=str(path))
    for m in ('s1', 's2'):
        assert same(clf.encoders[m], decur.backbones[m].state_dict())
    # The FCN's feature pyramids take the same weights (layer2/3/4 of the encoders).
    seg = MultimodalSegmentationTask(
        modalities=['s1', 's2'], model='resnet18', weights=str(path)
    )
    assert same(seg.encoders['s2'], decur.backbones['s2'].state_dict())


def test_weights_from_the_reference_joint_layout(
    tmp_path: Path, states: dict[str, dict[str, torch.Tensor]]
) -> None:
    path = tmp_path / 'rn18_joint.pth'
    torch.save(
        {'epoch': 100, 'model': reference_joint(states['s1'], states['s2'])}, path
    )
    task = MultimodalClassificationTask(model='resnet18', weights=str(path))
    assert same(task.encoders['s1'], states['s1'])
    assert same(task.encoders['s2'], states['s2'])
    # One modality of a joint file: joint_modalities says which encoder it is.
    s2 = MultimodalClassificationTask(
        modalities=['s2'],
        model='resnet18',
        weights=str(path),
        joint_modalities=['s1', 's2'],
    )
    assert same(s2.encoders['s2'], states['s2'])
    # Without it, a single-modality path is a backbone file: clear error here.
    with pytest.raises(ValueError, match='holds both encoders of a joint checkpoint'):
        MultimodalClassificationTask(
            modalities=['s2'], model='resnet18', weights=str(path)
        )
    with pytest.raises(ValueError, match='do not include'):
        MultimodalClassificationTask(
            modalities=['rgb'],
            in_channels={'rgb': 3},
            model='resnet18',
            weights=str(path),
            joint_modalities=['s1', 's2'],
        )


def test_weights_from_one_backbone_file_per_modality(
    tmp_path: Path, states: dict[str, dict[str, torch.Tensor]]
) -> None:
    paths = {}
    for m, state in states.items():
        paths[m] = str(tmp_path / f'{m}.pth')
        # Classifier keys in a backbone file are ignored.
        torch.save({**state, 'fc.weight': torch.zeros(19, 512)}, paths[m])
    task = MultimodalSegmentationTask(
        modalities=['s1', 's2'], model='resnet18', weights=paths
    )
    assert same(task.encoders['s1'], states['s1'])
    assert same(task.encoders['s2'], states['s2'])
    single = MultimodalClassificationTask(
        modalities=['s1'], model='resnet18', weights=paths['s1']
    )
    assert same(single.encoders['s1'], states['s1'])
    with pytest.raises(
        ValueError, match=r"in_channels\['s2'\]=13 but the weights .*s1\.pth take 2"
    ):
        MultimodalClassificationTask(
            model='resnet18', weights={'s2': paths['s1']}, in_channels={'s2': 13}
        )
    # Without in_channels, the file's channels are taken.
    taken = MultimodalClassificationTask(model='resnet18', weights={'s2': paths['s1']})
    assert same(taken.encoders['s2'], states['s1'])
    with pytest.raises(ValueError, match='unknown modalities'):
        MultimodalClassificationTask(model='resnet18', weights={'rgb': paths['s1']})


@pytest.fixture
def member_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    states: dict[str, dict[str, torch.Tensor]],
) -> None:
    """The FakeWeights files pre-placed in a private torch.hub cache."""
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path))
    cache = tmp_path / 'checkpoints'
    cache.mkdir()
    torch.save(reference_joint(states['s1'], states['s2']), cache / 'rn18_joint.pth')
    torch.save(states['s2'], cache / 'rn18_s2.pth')


@pytest.mark.usefixtures('member_files')
def test_weights_members_through_the_hub_cache(
    states: dict[str, dict[str, torch.Tensor]],
) -> None:
    # Files pre-placed in the torch.hub cache: the real download code finds them.
    joint = MultimodalClassificationTask(model='resnet18', weights=FakeWeights.JOINT)
    assert same(joint.encoders['s1'], states['s1'])
    # Modality order comes from meta['modality'], not from the task's order.
    swapped = MultimodalClassificationTask(
        modalities=['s2', 's1'], model='resnet18', weights=FakeWeights.JOINT
    )
    assert same(swapped.encoders['s2'], states['s2'])
    assert list(swapped.encoders) == ['s2', 's1']
    single = MultimodalClassificationTask(
        modalities=['s2'], model='resnet18', weights=FakeWeights.JOINT
    )
    assert same(single.encoders['s2'], states['s2'])
    backbone = MultimodalClassificationTask(
        modalities=['s2'], model='resnet18', weights=FakeWeights.S2
    )
    assert same(backbone.encoders['s2'], states['s2'])
    with pytest.raises(ValueError, match='hold one encoder'):
        MultimodalClassificationTask(model='resnet18', weights=FakeWeights.S2)
    with pytest.raises(ValueError, match='set model: resnet50'):
        MultimodalClassificationTask(
            modalities=['s2'], model='resnet18', weights=FakeWeights.RN50
        )
    with pytest.raises(ValueError, match='neither an existing file nor'):
        MultimodalClassificationTask(model='resnet18', weights='NoSuch_Weights.X')


def batch(n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        'image_s1': torch.rand(n, 2, size, size, generator=g),
        'image_s2': torch.rand(n, 13, size, size, generator=g),
        'label': torch.randint(0, 2, (n, 19), generator=g),
    }


def test_linear_probe_freezes_encoders_and_their_statistics() -> None:
    with pytest.warns(UserWarning, match=r"no weights for encoder\(s\) \['s1', 's2'\]"):
        task = MultimodalClassificationTask(model='resnet18', freeze_backbone=True)
    trainable = {n for n, p in task.named_parameters() if p.requires_grad}
    assert trainable == {'model.head.weight', 'model.head.bias'}
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, AdamW)
    assert (
        sum(p.numel() for g in optimizer.param_groups for p in g['params']) == 19 * 1025
    )
    task.train()
    assert not task.encoders['s1'].training
    assert task.model.head.training
    stats = task.encoders['s1'].bn1.running_mean.clone()
    task.training_step(batch(), 0).backward()
    assert torch.equal(task.encoders['s1'].bn1.running_mean, stats)
    # The reference linear probe kept BatchNorm updating; that is an option.
    ref = MultimodalClassificationTask(
        model='resnet18', freeze_backbone=True, frozen_encoder_train_mode=True
    )
    ref.train()
    stats = ref.encoders['s1'].bn1.running_mean.clone()
    ref.training_step(batch(), 0)
    assert not torch.equal(ref.encoders['s1'].bn1.running_mean, stats)


@pytest.mark.parametrize('reference_mode', [False, True])
def test_linear_probe_keeps_statistics_frozen_under_the_trainer(
    reference_mode: bool,
) -> None:
    # Lightning never calls task.train() in fit; the encoders are built in
    # training mode, so this checks the per-batch hook, not the override.
    task = MultimodalSegmentationTask(
        model='resnet18',
        modalities=['rgb'],
        in_channels={'rgb': 3},
        num_classes=3,
        freeze_backbone=True,
        frozen_encoder_train_mode=reference_mode,
    )
    assert task.encoders['rgb'].training
    stats = task.encoders['rgb'].bn1.running_mean.clone()
    g = torch.Generator().manual_seed(0)
    samples = [
        {
            'image_rgb': torch.rand(3, 32, 32, generator=g),
            'mask': torch.randint(0, 3, (32, 32), generator=g),
        }
        for _ in range(4)
    ]
    quiet_trainer(max_steps=2).fit(task, DataLoader(samples, batch_size=2))
    changed = not torch.equal(task.encoders['rgb'].bn1.running_mean, stats)
    assert changed == reference_mode
    assert task.encoders['rgb'].training == reference_mode
    assert task.model.training


def test_fine_tuning_optimiser_and_schedule() -> None:
    task = MultimodalClassificationTask(
        model='resnet18',
        optimizer='sgd',
        lr=0.5,
        weight_decay=0.0,
        lr_milestones=[2, 4],
    )
    config: Any = task.configure_optimizers()
    optimizer, scheduler = config['optimizer'], config['lr_scheduler']['scheduler']
    assert isinstance(optimizer, SGD)
    assert optimizer.param_groups[0]['momentum'] == 0.9
    assert isinstance(scheduler, MultiStepLR)
    lrs = []
    for _ in range(5):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.5, 0.5, 0.05, 0.05, 0.005])
    n_all = sum(p.numel() for p in task.parameters())
    assert sum(p.numel() for g in optimizer.param_groups for p in g['params']) == n_all


def test_input_checks_and_options() -> None:
    task = MultimodalClassificationTask(model='resnet18')
    bad = batch()
    bad['image_s2'] = bad['image_s2'][:, :12]
    with pytest.raises(ValueError, match='set insert_b10'):
        task.training_step(bad, 0)
    del bad['image_s1']
    with pytest.raises(ValueError, match="batch has no 'image_s1'"):
        task.training_step(bad, 0)
    single = MultimodalClassificationTask(modalities=['s1'], model='resnet18')
    plain = {'image': batch()['image_s1'], 'label': batch()['label']}
    assert torch.isfinite(single.training_step(plain, 0))
    with pytest.raises(ValueError, match='one or more distinct'):
        MultimodalClassificationTask(modalities=['s1', 's1'])
    with pytest.raises(ValueError, match='needs two modalities'):
        MultimodalClassificationTask(modalities=['s1'], missing_modality_modes=['zero'])
    with pytest.raises(ValueError, match='loss'):
        MultimodalClassificationTask(loss='focal')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='same length'):
        MultimodalSegmentationTask(reduce_channels=[128])
    with pytest.raises(ValueError, match='no entry for modality'):
        MultimodalSegmentationTask(modalities=['sar'], model='resnet18')


def test_classification_metrics_cover_the_whole_epoch() -> None:
    # Fixed scores per sample: batch-wise mAP averaged over batches (the reference)
    # differs from mAP over the epoch, which is what must be logged.
    labels = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]])
    scores = torch.tensor(
        [[3.0, -1.0], [-2.0, 0.5], [0.1, -0.3], [1.5, 2.0], [-0.5, -2.0], [0.2, 1.0]]
    )
    samples = [
        {'image_s1': torch.full((2, 8, 8), float(i)), 'label': labels[i]}
        for i in range(6)
    ]
    task = MultimodalClassificationTask(
        modalities=['s1'], model='resnet18', num_classes=2
    )
    task.forward = lambda x, drop=(): scores[x['s1'][:, 0, 0, 0].long()]  # type: ignore[method-assign,assignment]
    loader: DataLoader[dict[str, torch.Tensor]] = DataLoader(samples, batch_size=2)
    result = quiet_trainer().test(task, dataloaders=loader)[0]
    probs = scores.sigmoid()
    epoch = multilabel_average_precision(probs, labels, num_labels=2, average='micro')
    per_batch = torch.stack(
        [
            multilabel_average_precision(
                probs[i : i + 2], labels[i : i + 2], num_labels=2, average='micro'
            )
            for i in (0, 2, 4)
        ]
    ).mean()
    assert abs(float(epoch - per_batch)) > 0.01
    assert result['test_mAP_micro'] == pytest.approx(float(epoch), abs=1e-6)
    macro = multilabel_average_precision(probs, labels, num_labels=2, average='macro')
    assert result['test_mAP_macro'] == pytest.approx(float(macro), abs=1e-6)
    assert {'test_F1_micro', 'test_F1_macro', 'test_loss'} <= set(result)


def test_segmentation_metrics_cover_the_whole_epoch() -> None:
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 4, (4, 8, 8), generator=g)
    preds = torch.where(torch.rand(4, 8, 8, generator=g) < 0.7, masks, (masks + 1) % 4)
    preds[2:] = (preds[2:] + 1) % 4  # a bad second batch
    samples = [
        {'image_rgb': torch.full((3, 8, 8), float(i)), 'mask': masks[i]}
        for i in range(4)
    ]
    task = MultimodalSegmentationTask(
        modalities=['rgb'], model='resnet18', num_classes=4
    )
    logits = nn.functional.one_hot(preds, 4).permute(0, 3, 1, 2).float()
    task.forward = lambda x, drop=(): logits[x['rgb'][:, 0, 0, 0].long()]  # type: ignore[method-assign,assignment]
    result = quiet_trainer().test(task, dataloaders=DataLoader(samples, batch_size=2))[
        0
    ]
    kwargs: dict[str, Any] = {'num_classes': 4, 'ignore_index': 0}
    epoch = multiclass_jaccard_index(preds, masks, **kwargs)
    per_batch = (
        multiclass_jaccard_index(preds[:2], masks[:2], **kwargs)
        + multiclass_jaccard_index(preds[2:], masks[2:], **kwargs)
    ) / 2
    assert abs(float(epoch - per_batch)) > 0.01
    assert result['test_mIoU'] == pytest.approx(float(epoch), abs=1e-6)
    valid = masks != 0
    accuracy = (preds[valid] == masks[valid]).float().mean()
    assert result['test_PixelAccuracy'] == pytest.approx(float(accuracy), abs=1e-6)


def test_modality_missing_evaluation_is_logged_separately() -> None:
    dm = BigEarthNetMMDataModule(
        root=os.path.join(DATA, 'bigearthnet', 'v1'),
        image_size=24,
        crop_size=32,
        eval_resize=36,
        insert_b10=True,
        batch_size=2,
    )
    torch.manual_seed(0)
    task = MultimodalClassificationTask(
        model='resnet18', missing_modality_modes=['zero', 'drop']
    )
    result = quiet_trainer().test(task, datamodule=dm)[0]
    for m in ('s1', 's2'):
        for mode in ('zero', 'drop'):
            for metric in ('mAP_micro', 'mAP_macro', 'F1_micro', 'F1_macro', 'loss'):
                assert f'test_missing_{m}_{mode}_{metric}' in result
    # Recompute two of them by hand over the whole test split.
    task.eval()
    outputs: dict[str, list[torch.Tensor]] = {
        'full': [],
        'zero': [],
        'drop': [],
        'y': [],
    }
    with torch.no_grad():
        for raw in dm.test_dataloader():
            b = dm.aug(raw)
            x = {'s1': b['image_s1'], 's2': b['image_s2']}
            outputs['full'].append(task.model(x).sigmoid())
            outputs['zero'].append(
                task.model({**x, 's2': torch.zeros_like(x['s2'])}).sigmoid()
            )
            outputs['drop'].append(task.model(x, drop=['s2']).sigmoid())
            outputs['y'].append(b['label'])
    y = torch.cat(outputs['y'])
    for key, name in (
        ('full', 'test_mAP_micro'),
        ('zero', 'test_missing_s2_zero_mAP_micro'),
        ('drop', 'test_missing_s2_drop_mAP_micro'),
    ):
        ap = multilabel_average_precision(
            torch.cat(outputs[key]), y, num_labels=19, average='micro'
        )
        assert result[name] == pytest.approx(float(ap), abs=1e-5), name
    assert result['test_missing_s2_drop_mAP_micro'] != result['test_mAP_micro']


def test_segmentation_training_step_and_prediction() -> None:
    task = MultimodalSegmentationTask(modalities=['rgb', 'dem'], model='resnet18')
    b = {
        'image_rgb': torch.rand(2, 3, 32, 32),
        'image_dem': torch.rand(2, 3, 32, 32),
        'mask': torch.randint(0, 11, (2, 32, 32)),
    }
    loss = task.training_step(b, 0)
    loss.backward()
    assert task.encoders['dem'].conv1.weight.grad is not None
    probs = task.predict_step(b, 0)
    assert probs.shape == (2, 11, 32, 32)
    assert torch.allclose(probs.sum(1), torch.ones(2, 32, 32), atol=1e-5)
    cls = MultimodalClassificationTask(model='resnet18')
    assert cls.predict_step(batch(), 0).shape == (2, 19)


def test_rda_joint_file_fills_both_feature_pyramids(tmp_path: Path) -> None:
    # Released RDA joint layout: backbone_N + da1_* / da2_*; modality 2 takes da2_*
    # (transfer semantics) and the layer3/layer4 features include the DA residual.
    torch.manual_seed(0)
    s1, s2 = build_backbone('resnet50_rda', 3), build_backbone('resnet50_rda', 3)
    state: dict[str, torch.Tensor] = {}
    for i, enc in enumerate((s1, s2), start=1):
        for k, v in enc.state_dict().items():
            if k.startswith('da_'):
                state[f'module.da{i}_{k[3:]}'] = v
            else:
                state[f'module.backbone_{i}.{k}'] = v
    path = tmp_path / 'rn50_rda_joint.pth'
    torch.save(state, path)
    seg = MultimodalSegmentationTask(
        modalities=['rgb', 'dem'], model='resnet50_rda', weights=str(path)
    ).eval()
    x = torch.rand(1, 3, 64, 64)
    for m, src in (('rgb', s1), ('dem', s2)):
        feats = seg.encoders[m](x)
        ref = src.eval().forward_intermediates(
            x, indices=(2, 3, 4), intermediates_only=True
        )
        for got, want in zip(feats, ref, strict=True):
            assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.usefixtures('member_files')
def test_member_modalities_of_other_names_are_warned_about(
    states: dict[str, dict[str, torch.Tensor]],
) -> None:
    channels = {'sar': 2, 'ms': 13}
    # Renamed on purpose through joint_modalities: loads, and says how.
    with pytest.warns(
        UserWarning,
        match=r"\['s1', 's2'\] but is loaded into the task modalities \['sar', 'ms'\]:"
        r" encoder 1 \(s1\) -> task modality 'sar', encoder 2 \(s2\) -> task",
    ):
        task = MultimodalClassificationTask(
            modalities=['sar', 'ms'],
            in_channels=channels,
            joint_modalities=['sar', 'ms'],
            model='resnet18',
            weights=FakeWeights.JOINT,
        )
    assert same(task.encoders['ms'], states['s2'])
    # A backbone member into a modality of another name, alone or per modality.
    for weights in (FakeWeights.S2, {'ms': FakeWeights.S2}):
        with pytest.warns(UserWarning, match=r"encoder 1 \(s2\) -> task modality 'ms'"):
            MultimodalClassificationTask(
                modalities=['ms'],
                in_channels={'ms': 13},
                model='resnet18',
                weights=weights,
            )
    # Names that match the member: quiet.
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        MultimodalClassificationTask(model='resnet18', weights=FakeWeights.JOINT)
        MultimodalClassificationTask(
            modalities=['s2'], model='resnet18', weights={'s2': FakeWeights.S2}
        )
