import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from torchgeo_decur.cli import main as cli_main
from torchgeo_decur.cli.shards import SeasonsOf
from torchgeo_decur.datasets import BigEarthNetMM
from torchgeo_decur.datasets.shards import write_shards
from torchgeo_decur.datasets.terramesh import TerraMeshStream

from .conftest import DATA
from .faults.library import FAULTS
from .test_faults_cli import run


class Pairs:
    """Deterministic map-style pairs with awkward values (NaN, -inf, extremes)."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i == self.fail_at:
            raise RuntimeError(f'interrupted at {i}')
        g = torch.Generator().manual_seed(i)
        a = torch.randn(2, 5, 6, generator=g) * 20 - 12
        a[0, 0, 0] = float('nan')
        a[1, 0, 1] = float('-inf')
        b = torch.randint(0, 65535, (3, 5, 6), generator=g).to(torch.uint16)
        return {'image_a': a, 'image_b': b, 'label': torch.tensor(i)}


def same_bits(x: Tensor, y: Tensor) -> bool:
    return (
        x.dtype == y.dtype
        and x.shape == y.shape
        and x.numpy().tobytes() == y.numpy().tobytes()
    )


def read_back(
    root: str, names: list[str], split: str = 'train'
) -> list[dict[str, Any]]:
    return list(TerraMeshStream(root, split, names, shuffle=False))


def test_shards_read_back_bit_identical(tmp_path: Path) -> None:
    report = write_shards(Pairs(7), str(tmp_path), prefix='toy', samples_per_shard=3)
    assert report.written == [0, 1, 2]
    assert report.kept == []
    assert sorted(os.listdir(tmp_path / 'train' / 'a')) == [
        f'toy_shard_{n:06d}.tar' for n in range(3)
    ]
    samples = read_back(str(tmp_path), ['a', 'b'])
    assert [s['key'] for s in samples] == [f'toy_train_{i:07d}' for i in range(7)]
    for i, s in enumerate(samples):
        want = Pairs(7)[i]
        assert same_bits(s['image_a'], want['image_a'])
        assert same_bits(s['image_b'], want['image_b'])
    # Uncompressed chunks read back the same.
    write_shards(Pairs(2), str(tmp_path / 'raw'), compression='none')
    assert same_bits(
        read_back(str(tmp_path / 'raw'), ['b'])[1]['image_b'], Pairs(2)[1]['image_b']
    )


def test_interrupted_write_resumes_and_keeps_complete_shards(tmp_path: Path) -> None:
    out = str(tmp_path)
    with pytest.raises(RuntimeError, match='interrupted at 5'):
        write_shards(Pairs(8, fail_at=5), out, samples_per_shard=2)
    folder = tmp_path / 'train' / 'a'
    assert sorted(os.listdir(folder)) == [
        'shard_shard_000000.tar',
        'shard_shard_000001.tar',
    ]
    # A crash (not an exception) would leave a temporary file behind.
    (folder / '.shard_shard_000002.tar-crash.tar.tmp').write_bytes(b'partial')
    before = {p: os.stat(folder / p).st_mtime_ns for p in os.listdir(folder)}
    report = write_shards(Pairs(8), out, samples_per_shard=2)
    assert report.kept == [0, 1]
    assert report.written == [2, 3]
    assert not [p for p in os.listdir(folder) if p.endswith('.tmp')]
    for name in ('shard_shard_000000.tar', 'shard_shard_000001.tar'):
        assert os.stat(folder / name).st_mtime_ns == before[name]
    samples = read_back(out, ['a', 'b'])
    assert len(samples) == 8
    assert all(
        same_bits(s['image_a'], Pairs(8)[i]['image_a']) for i, s in enumerate(samples)
    )
    # A shard present for one modality only is incomplete and written again.
    os.remove(tmp_path / 'train' / 'b' / 'shard_shard_000003.tar')
    assert write_shards(Pairs(8), out, samples_per_shard=2).written == [3]


def test_other_settings_are_not_silently_overwritten(tmp_path: Path) -> None:
    write_shards(Pairs(4), str(tmp_path), samples_per_shard=2)
    with pytest.raises(
        ValueError, match=r'shards\.json records other settings .*samples_per_shard'
    ):
        write_shards(Pairs(4), str(tmp_path), samples_per_shard=3)


def test_inconsistent_samples_are_named(tmp_path: Path) -> None:
    class Odd(Pairs):
        def __getitem__(self, i: int) -> dict[str, Any]:
            sample = super().__getitem__(i)
            if i == 2:
                sample['image_b'] = sample['image_b'][:2]
            return sample

    with pytest.raises(
        ValueError,
        match=r'sample 2: image_b is uint16 with 2 bands, sample 0 has uint16 with 3',
    ):
        write_shards(Odd(3), str(tmp_path))
    with pytest.raises(ValueError, match='no image_<modality> key'):
        write_shards([{'x': torch.zeros(1)}], str(tmp_path / 'x'))  # type: ignore[arg-type]


def test_cli_converts_ssl4eo_s12_pairs(tmp_path: Path) -> None:
    root = os.path.join(DATA, 'ssl4eo_s12')
    args = ['shards', 'ssl4eo-s12', '--root', root, '--out', str(tmp_path)]
    args += [
        '--seasons',
        '0',
        '1',
        '--samples-per-shard',
        '3',
        '--init-args',
        '{"size": 12}',
    ]
    assert cli_main(args) == 0
    source = SeasonsOf([0, 1], root=root, size=12)
    samples = read_back(str(tmp_path), ['s1', 's2'])
    assert len(samples) == len(source) > 3
    for i, s in enumerate(samples):
        assert s['key'] == f'ssl4eos12_train_{i:07d}'
        assert same_bits(s['image_s1'], source[i]['image_s1'])
        assert same_bits(s['image_s2'], source[i]['image_s2'])
    # Rerunning resumes (nothing left to write); other settings are refused.
    assert cli_main(args) == 0
    assert cli_main([*args[:-2], '--init-args', '{"size": 10}']) == 1


def test_cli_converts_bigearthnet_mm(tmp_path: Path) -> None:
    root = os.path.join(DATA, 'bigearthnet', 'v1')
    args = ['shards', 'bigearthnet-mm', '--root', root, '--out', str(tmp_path)]
    assert cli_main([*args, '--split', 'val', '--init-args', '{"image_size": 12}']) == 0
    source = BigEarthNetMM(root, 'val', image_size=12)
    samples = read_back(str(tmp_path), ['s1', 's2'], split='val')
    assert len(samples) == len(source)
    for s, i in zip(samples, range(len(source)), strict=True):
        assert same_bits(s['image_s1'], source[i]['image_s1'])
        assert same_bits(s['image_s2'], source[i]['image_s2'])
    assert np.isfinite(samples[0]['image_s1'].numpy()).all()


def test_damaged_manifest_is_named_by_the_writer(tmp_path: Path) -> None:
    write_shards(Pairs(2), str(tmp_path), samples_per_shard=2)
    manifest = tmp_path / 'train' / 'shards.json'
    manifest.write_text('{"samples": 2,')
    with pytest.raises(ValueError, match='damaged manifest') as info:
        write_shards(Pairs(2), str(tmp_path), samples_per_shard=2)
    assert str(manifest) in str(info.value)


def chips_copy(tmp_path: Path) -> Path:
    root = tmp_path / 'chips'
    for m in ('s1', 's2'):
        shutil.copytree(os.path.join(DATA, 'chips', m), root / m)
    os.remove(root / 's1' / 'S1_tile_98.tif')
    os.remove(root / 's2' / 'tile_99_S2.tif')
    return root


def chips_args(root: Path, out: Path) -> list[str]:
    init = {
        'folders': {m: str(root / m) for m in ('s1', 's2')},
        'pattern': {'s1': 'S1_(?P<key>.+)', 's2': '(?P<key>.+)_S2'},
        'check_files': True,
    }
    return [
        'shards',
        'torchgeo_decur.datasets:PairedChips',
        '--out',
        str(out),
        '--init-args',
        json.dumps(init),
    ]


@pytest.mark.parametrize('fault', list(FAULTS))
def test_cli_on_every_catalogue_fault_is_one_line(
    fault: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 24 item 3: bad input ends in one line naming the file, exit 1 (or
    # is converted, where the values read are the same).
    root = chips_copy(tmp_path)
    bad = root / 's2' / 'tile_03_S2.tif'
    FAULTS[fault](str(bad))
    status = cli_main(chips_args(root, tmp_path / 'out'))
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    if status == 0:
        assert fault in ('mixed-dtypes', 'constant-band')
        return
    assert status == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith('torchgeo-decur shards: error: ')
    assert str(bad) in last or 'tile_03' in last


def test_cli_bad_arguments_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = chips_copy(tmp_path)
    args = chips_args(root, tmp_path / 'out')
    cases = {
        'not valid JSON': [*args[:-1], '{"folders": '],
        'must be a JSON object': [*args[:-1], '[1]'],
        "cannot load dataset class 'torchgeo_decur.datasets:NoSuchClass'": [
            args[0],
            'torchgeo_decur.datasets:NoSuchClass',
            *args[2:],
        ],
        "cannot load dataset class 'no_such_module:X'": [
            args[0],
            'no_such_module:X',
            *args[2:],
        ],
        'unknown dataset': [args[0], 'nothing', *args[2:]],
    }
    for expected, argv in cases.items():
        assert cli_main(argv) == 1, expected
        err = capsys.readouterr().err
        assert 'Traceback' not in err
        assert expected in err.strip().splitlines()[-1]
    write_shards(Pairs(2), str(tmp_path / 'damaged'), samples_per_shard=2)
    manifest = tmp_path / 'damaged' / 'train' / 'shards.json'
    manifest.write_text('{')
    argv = [*args[:3], str(tmp_path / 'damaged'), *args[4:]]
    assert cli_main(argv) == 1
    assert str(manifest) in capsys.readouterr().err


def test_cli_subprocess_on_a_truncated_chip(tmp_path: Path) -> None:
    root = chips_copy(tmp_path)
    bad = root / 's2' / 'tile_03_S2.tif'
    FAULTS['truncated'](str(bad))
    result = run('torchgeo-decur', *chips_args(root, tmp_path / 'out'))
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('torchgeo-decur shards: error: ')
    assert str(bad) in last


BASELINES = os.path.join(DATA, 's2_baselines')


class WithMetadata(Pairs):
    """Pairs that carry TerraMesh's sample metadata."""

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = super().__getitem__(i)
        g = torch.Generator().manual_seed(100 + i)
        sample['time_b'] = torch.tensor(
            1_686_823_200_000_000_000 + i, dtype=torch.int64
        )
        sample['center_lat'] = torch.tensor(48.7 + i / 100, dtype=torch.float64)
        sample['center_lon'] = torch.tensor(9.1 - i / 100, dtype=torch.float64)
        sample['cloud_mask_b'] = (torch.rand(5, 6, generator=g) > 0.5).to(torch.uint8)
        return sample


def test_shards_keep_the_sample_metadata(tmp_path: Path) -> None:
    write_shards(WithMetadata(4), str(tmp_path), samples_per_shard=3)
    stream = TerraMeshStream(
        str(tmp_path), 'train', ['a', 'b'], shuffle=False, metadata=True
    )
    samples = list(stream)
    assert len(samples) == 4
    for i, s in enumerate(samples):
        want = WithMetadata(4)[i]
        assert same_bits(s['image_b'], want['image_b'])
        assert int(s['time_b']) == int(want['time_b'])
        assert float(s['center_lat']) == float(want['center_lat'])
        assert float(s['center_lon']) == float(want['center_lon'])
        assert torch.equal(s['cloud_mask_b'], want['cloud_mask_b'])
        assert 'cloud_mask_a' not in s
        assert int(s['time_a']) == 0  # no time for modality a: stored as none
    fraction = [
        float((w['cloud_mask_b'] != 0).float().mean())
        for w in map(WithMetadata(4).__getitem__, range(4))
    ]
    cut = sorted(fraction)[1]
    kept = TerraMeshStream(
        str(tmp_path), 'train', ['b'], shuffle=False, max_cloud_fraction=cut
    )
    assert len(list(kept)) == sum(f <= cut for f in fraction)


def chips_cli(out: Path, folder: str, *extra: str) -> list[str]:
    init = json.dumps({'folders': {'s2': os.path.join(BASELINES, folder)}})
    return [
        'shards',
        'torchgeo_decur.datasets:PairedChips',
        '--out',
        str(out),
        '--prefix',
        folder,
        '--init-args',
        init,
        *extra,
    ]


def test_shards_of_offset_chips_hold_pre_offset_values(tmp_path: Path) -> None:
    for folder in ('pb0301', 'pb0509'):
        assert cli_main(chips_cli(tmp_path / folder, folder)) == 0
    old, new = (
        read_back(str(tmp_path / folder), ['s2'])[0]['image_s2']
        for folder in ('pb0301', 'pb0509')
    )
    assert torch.equal(old, new)
    assert (old[:, :2, :2] == 0).all()
    assert (
        cli_main(chips_cli(tmp_path / 'raw', 'pb0509', '--s2-harmonize', 'never')) == 0
    )
    raw = read_back(str(tmp_path / 'raw'), ['s2'])[0]['image_s2']
    valid = old != 0
    assert torch.equal((raw - old)[valid], torch.full_like(old[valid], 1000.0))
    manifest = (tmp_path / 'raw' / 'train' / 'shards.json').read_text()
    assert '"s2_harmonize": "never"' in manifest
    ssl4eo = ['shards', 'ssl4eo-s12', '--root', os.path.join(DATA, 'ssl4eo_s12')]
    assert (
        cli_main([*ssl4eo, '--out', str(tmp_path / 's'), '--s2-harmonize', 'auto']) == 1
    )
