import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from torchgeo.main import main

from torchgeo_decur import DeCURTask
from torchgeo_decur.datamodules import PairedChipsDataModule
from torchgeo_decur.datamodules.chips import read_split_file

from ..conftest import DATA, ROOT, quiet_trainer

CHIPS = os.path.join(DATA, 'chips')
FOLDERS = {'s1': os.path.join(CHIPS, 's1'), 's2': os.path.join(CHIPS, 's2')}
PATTERN = {'s1': 'S1_(?P<key>.+)', 's2': '(?P<key>.+)_S2'}
TRAIN = os.path.join(CHIPS, 'splits', 'train.txt')
VAL = os.path.join(CHIPS, 'splits', 'val.txt')
KEYS = [f'tile_{i:02d}' for i in range(8)]


def module(**kwargs: Any) -> PairedChipsDataModule:
    options: dict[str, Any] = {
        'folders': FOLDERS,
        'pattern': PATTERN,
        'on_invalid': 'skip',
        'batch_size': 2,
    }
    return PairedChipsDataModule(**(options | kwargs))


def set_up(**kwargs: Any) -> PairedChipsDataModule:
    dm = module(**kwargs)
    with pytest.warns(UserWarning, match='no match'):
        dm.setup('fit')
    return dm


def expected_statistics(keys: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per-band mean/std over the given chips, NaN (S1) and nodata 0 (S2) left out."""
    out = {}
    for m, name, nodata in (
        ('s1', 'S1_{}.tif', None),
        ('s2', '{}_S2.tif', 0.0),
    ):
        stack = []
        for key in keys:
            with rasterio.open(os.path.join(FOLDERS[m], name.format(key))) as src:
                stack.append(src.read().astype('float64'))
        data = np.concatenate([a.reshape(a.shape[0], -1) for a in stack], axis=1)
        valid = np.isfinite(data) & (data != nodata if nodata is not None else True)
        mean = [float(row[ok].mean()) for row, ok in zip(data, valid, strict=True)]
        std = [float(row[ok].std()) for row, ok in zip(data, valid, strict=True)]
        out[m] = {'mean': mean, 'std': std}
    return out


def test_seeded_split_is_deterministic_and_disjoint() -> None:
    a = set_up(val_fraction=0.25, seed=3)
    b = set_up(val_fraction=0.25, seed=3)
    train, val = a.train_dataset.keys, a.val_dataset.keys
    assert len(val) == 2
    assert len(train) == 6
    assert not set(train) & set(val)
    assert sorted(train + val) == KEYS
    assert (b.train_dataset.keys, b.val_dataset.keys) == (train, val)
    others = [set_up(val_fraction=0.25, seed=s).val_dataset.keys for s in range(4)]
    assert len({tuple(v) for v in others}) > 1, 'the seed changes the split'


def test_split_files() -> None:
    dm = set_up(train_split=TRAIN, val_split=VAL)
    assert dm.train_dataset.keys == KEYS[:6]
    assert dm.val_dataset.keys == KEYS[6:]
    assert read_split_file(VAL) == ['tile_06', 'tile_07']  # comment line left out
    # Only validation keys given: the others train.
    only_val = set_up(val_split=VAL)
    assert only_val.train_dataset.keys == KEYS[:6]


def test_split_file_errors(tmp_path: Path) -> None:
    unknown = tmp_path / 'val.txt'
    unknown.write_text('tile_07\ntile_98\nmissing_key\n')
    dm = module(val_split=str(unknown), on_invalid='error')
    with pytest.raises(ValueError, match='no match'):
        dm.setup('fit')  # the unmatched chips come first
    for m, folder in FOLDERS.items():
        shutil.copytree(folder, tmp_path / m)
    (tmp_path / 's1' / 'S1_tile_98.tif').unlink()
    (tmp_path / 's2' / 'tile_99_S2.tif').unlink()
    dm = module(
        folders={m: str(tmp_path / m) for m in FOLDERS},
        val_split=str(unknown),
        on_invalid='error',
    )
    with pytest.raises(
        ValueError,
        match=rf"val_split '{unknown}' lists 2 key\(s\).*\['tile_98', 'missing_key'\]",
    ):
        dm.setup('fit')
    skipping = module(val_split=str(unknown))
    with pytest.warns(UserWarning, match='missing_key'):
        skipping.setup('fit')
    assert skipping.val_dataset.keys == ['tile_07']
    overlap = tmp_path / 'train.txt'
    overlap.write_text('tile_00\ntile_07\n')
    with pytest.raises(ValueError, match=r"share keys \['tile_07'\]"):
        set_up(train_split=str(overlap), val_split=VAL)
    twice = tmp_path / 'twice.txt'
    twice.write_text('tile_00\ntile_00\n')
    with pytest.raises(ValueError, match=r"lists keys \['tile_00'\] twice"):
        set_up(train_split=str(twice))
    with pytest.raises(ValueError, match='cannot read split file'):
        set_up(train_split=str(tmp_path / 'nope.txt'))
    with pytest.raises(ValueError, match='either val_fraction or split files'):
        module(val_fraction=0.5, val_split=VAL)


def test_statistics_are_estimated_without_invalid_values() -> None:
    dm = set_up(train_split=TRAIN, val_split=VAL)
    stats = dm.hparams['statistics']
    expected = expected_statistics(KEYS[:6])  # every training chip, no val chip
    for m in ('s1', 's2'):
        np.testing.assert_allclose(stats[m]['mean'], expected[m]['mean'], rtol=1e-9)
        np.testing.assert_allclose(stats[m]['std'], expected[m]['std'], rtol=1e-9)
    # The fixture's NaN and nodata corners would drag the means otherwise.
    assert all(np.isfinite(stats['s1']['mean']))
    assert min(stats['s2']['mean']) > 1000


def test_statistics_sample_is_seeded_and_given_ones_kept() -> None:
    a = set_up(statistics_chips=2, seed=1)
    b = set_up(statistics_chips=2, seed=1)
    full = set_up(seed=1)
    assert a.hparams['statistics'] == b.hparams['statistics']
    assert a.hparams['statistics'] != full.hparams['statistics']
    given = {'s1': {'mean': [-10.0, -18.0], 'std': [4.0, 5.0]}}
    c = set_up(statistics=given, seed=1)
    assert c.hparams['statistics']['s1'] == given['s1']
    assert c.hparams['statistics']['s2'] == full.hparams['statistics']['s2']
    with pytest.raises(ValueError, match=r"'s1' have 1 means and 1 stds.*2 bands"):
        set_up(statistics={'s1': {'mean': [0.0], 'std': [1.0]}})
    with pytest.raises(ValueError, match=r"modalities \['dem'\]"):
        module(statistics={'dem': {'mean': [0.0], 'std': [1.0]}})


def test_band_selection_reaches_statistics_and_batches() -> None:
    dm = set_up(bands={'s2': ['B4', 'B3', 'B2']}, train_split=TRAIN)
    assert dm.channels == {'s1': 2, 's2': 3}
    full = expected_statistics(KEYS[:6])['s2']
    np.testing.assert_allclose(
        dm.hparams['statistics']['s2']['mean'],
        [full['mean'][i] for i in (3, 2, 1)],
        rtol=1e-9,
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch['image_s2'].shape == (2, 3, 16, 16)


def test_device_scaling_is_the_decur_window() -> None:
    dm = set_up(train_split=TRAIN)
    batch = next(iter(dm.train_dataloader()))
    assert batch['image_s1'].shape == (2, 2, 16, 16)
    scaled = dm.aug(batch)
    stats = dm.hparams['statistics']
    for m in ('s1', 's2'):
        mean = torch.tensor(stats[m]['mean'])[:, None, None]
        std = torch.tensor(stats[m]['std'])[:, None, None]
        raw = batch[f'image_{m}'].double()
        want = ((raw - (mean - 2 * std)) / (4 * std)).clamp(0, 1).nan_to_num(0.0)
        torch.testing.assert_close(
            scaled[f'image_{m}'].double(), want, atol=1e-5, rtol=0
        )
    # The state saved in checkpoints restores the same scaling.
    other = module(train_split=TRAIN)
    other.load_state_dict(dm.state_dict())
    assert torch.equal(other.aug(batch)['image_s2'], scaled['image_s2'])
    raw = set_up(train_split=TRAIN, normalization='none')
    assert raw.hparams['statistics'] is None
    assert torch.equal(raw.aug(batch)['image_s2'], batch['image_s2'])


def test_too_few_chips_for_a_batch() -> None:
    with pytest.raises(ValueError, match=r'2 paired chips, fewer than batch_size=4'):
        set_up(train_split=VAL, batch_size=4)


def tiny_task(**kwargs: Any) -> DeCURTask:
    options: dict[str, Any] = {
        'modalities': ['s1', 's2'],
        'in_channels': {'s1': 2, 's2': 13},
        'model': 'resnet18',
        'weights': None,
        'projector_dims': [32, 32],
        'common_dim': 24,
        'crop_size': 16,
        'augmentations': {'s1': 'sar', 's2': 'optical'},
    }
    return DeCURTask(**(options | kwargs))


def test_task_disagreement_is_named() -> None:
    task = tiny_task(in_channels={'s1': 2, 's2': 12})
    with pytest.raises(ValueError, match=r"'s2'.*has 13 bands but the task"):
        quiet_trainer(max_steps=1).fit(task, datamodule=module(train_split=TRAIN))
    renamed = module(
        folders={'sar': FOLDERS['s1'], 'opt': FOLDERS['s2']},
        pattern={'sar': PATTERN['s1'], 'opt': PATTERN['s2']},
    )
    with pytest.raises(ValueError, match='name the folders after the task'):
        quiet_trainer(max_steps=1).fit(tiny_task(), datamodule=renamed)


def test_cli_pretrains_and_checkpoints_the_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    main(
        [
            'fit',
            '--config',
            os.path.join('tests', 'conf', 'decur_chips.yaml'),
            '--trainer.accelerator=cpu',
            '--trainer.max_steps=2',
            '--trainer.logger=false',
            '--trainer.enable_progress_bar=false',
            f'--trainer.default_root_dir={tmp_path}',
        ]
    )
    (ckpt,) = (tmp_path / 'checkpoints').glob('*.ckpt')
    state = torch.load(ckpt, weights_only=True, map_location='cpu')
    assert state['global_step'] == 2
    stats = state['datamodule_hyper_parameters']['statistics']
    expected = expected_statistics(KEYS[:6])
    for m in ('s1', 's2'):
        np.testing.assert_allclose(stats[m]['mean'], expected[m]['mean'], rtol=1e-9)


@pytest.mark.parametrize('split', [{}, {'val_fraction': 0.0}, {'train_split': TRAIN}])
def test_no_validation_split_means_no_validation_loop(split: dict[str, Any]) -> None:
    # Issue 24 B10: without validation chips the loader list is empty, so
    # Lightning skips validation (it used to validate on the training chips).
    dm = set_up(**split)
    assert dm.val_dataloader() == []
    assert len(dm.train_dataset) >= 2
    with_val = set_up(val_split=VAL)
    assert len(with_val.val_dataloader()) >= 1
