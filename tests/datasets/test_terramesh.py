import io
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch
import zarr
from torch.utils.data import DataLoader

from torchgeo_decur.datasets.terramesh import (
    TerraMeshFormatError,
    TerraMeshStream,
    parse_modalities,
    read_zarr_zip,
)

from ..conftest import DATA
from ..distributed import Results

ROOT = os.path.join(DATA, 'terramesh')
INVALID = os.path.join(ROOT, 'invalid')
TRAIN_KEYS = {f'majortom_train_{i:07d}' for i in range(4)} | {
    f'ssl4eos12_train_{i:07d}' for i in range(4, 8)
}


def members(path: str) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            m.name.removesuffix('.zarr.zip'): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def zarr_bands(data: bytes) -> np.ndarray:
    # Independent of the package: the dataset's own recipe (fsspec zip mapper,
    # consolidated metadata, the "bands" array, time axis first).
    fs = fsspec.filesystem('zip', fo=io.BytesIO(data))
    store = zarr.storage.FsspecStore.from_mapper(fs.get_mapper(''), read_only=True)
    values = np.asarray(zarr.open_consolidated(store, mode='r')['bands'][...])
    assert values.shape[0] == 1
    return values[0]


def test_streams_every_sample_with_raw_values_and_versions() -> None:
    ds = TerraMeshStream(ROOT, 'train', ['S1GRD|S1RTC', 'S2L1C', 'DEM'], shuffle=False)
    samples = list(ds)
    assert [s['key'] for s in samples] == sorted(TRAIN_KEYS)
    for s in samples:
        source = s['key'].split('_')[0]
        version = 'S1RTC' if source == 'majortom' else 'S1GRD'
        assert s['version_s1'] == (1 if source == 'majortom' else 0)
        assert s['image_s1'].shape == (2, 8, 8)
        assert s['image_s1'].dtype == torch.float16
        assert s['image_s2'].shape == (13, 8, 8)
        assert s['image_s2'].dtype == torch.int16
        assert s['image_dem'].shape == (1, 8, 8)
        for name, folder in (('s1', version), ('s2', 'S2L1C'), ('dem', 'DEM')):
            raw = members(os.path.join(ROOT, 'train', folder, s['shard']))[s['key']]
            assert np.array_equal(s[f'image_{name}'].numpy(), zarr_bands(raw))


def test_band_names_time_and_errors_of_one_zip() -> None:
    raw = members(os.path.join(ROOT, 'val', 'S1GRD', 'ssl4eos12_shard_000009.tar'))
    ((key, data),) = raw.items()
    sample = read_zarr_zip(data, key)
    assert sample.band_names == ['vv', 'vh']
    assert sample.bands.shape == (2, 8, 8)
    assert sample.time is not None
    assert sample.time[0] > 10**18
    with pytest.raises(TerraMeshFormatError, match='where-x: not a readable zip'):
        read_zarr_zip(b'no zip', 'where-x')
    # A group without the "bands" array (and its metadata).
    stripped = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        with zipfile.ZipFile(stripped, 'w') as dst:
            for name in src.namelist():
                body = src.read(name)
                if name.startswith('bands/'):
                    continue
                if name == '.zmetadata':
                    meta = json.loads(body)
                    meta['metadata'] = {
                        k: v
                        for k, v in meta['metadata'].items()
                        if not k.startswith('bands/')
                    }
                    body = json.dumps(meta).encode()
                dst.writestr(name, body)
    with pytest.raises(
        TerraMeshFormatError, match='where-y: the Zarr group has no "bands"'
    ):
        read_zarr_zip(stripped.getvalue(), 'where-y')


def test_modality_names() -> None:
    specs = parse_modalities(['S1GRD|S1RTC', 'S2L2A', 'DEM'])
    assert [(s.name, s.versions) for s in specs] == [
        ('s1', ('S1GRD', 'S1RTC')),
        ('s2', ('S2L2A',)),
        ('dem', ('DEM',)),
    ]
    with pytest.raises(ValueError, match='duplicate output names'):
        parse_modalities(['S2L1C', 'S2L2A'])
    with pytest.raises(ValueError, match='different default names'):
        parse_modalities(['S1GRD|S2L1C'])
    assert parse_modalities(['S1GRD|S2L1C'], {'S1GRD|S2L1C': 'x'})[0].name == 'x'


def test_shard_lacking_a_modality_errors_or_is_skipped() -> None:
    with pytest.raises(
        TerraMeshFormatError, match=r'majortom_shard_000001\.tar.*S1GRD'
    ):
        TerraMeshStream(ROOT, 'train', ['S1GRD', 'S2L1C'])
    with pytest.warns(UserWarning, match=r'skipped 2 shard.*majortom_shard_000001'):
        ds = TerraMeshStream(
            ROOT, 'train', ['S1GRD', 'S2L1C'], on_missing='skip', shuffle=False
        )
    assert {s['key'] for s in ds} == {f'ssl4eos12_train_{i:07d}' for i in range(4, 8)}


def test_missing_modality_folder_is_named() -> None:
    with pytest.raises(FileNotFoundError, match=r'S2RGB.*terramesh/train'):
        TerraMeshStream(ROOT, 'train', ['S2RGB', 'S2L1C'])


def test_zip_missing_a_band_names_shard_and_sample() -> None:
    kwargs = dict(
        modalities=['S1GRD', 'S2L1C'],
        shards=['ssl4eos12_shard_000003.tar'],
        shuffle=False,
    )
    ds = TerraMeshStream(INVALID, 'train', **kwargs)  # type: ignore[arg-type]
    with pytest.raises(
        TerraMeshFormatError,
        match=r'S2L1C/ssl4eos12_shard_000003\.tar sample ssl4eos12_train_0000101 '
        r'.*12 bands .*expected 13',
    ):
        list(ds)
    ds = TerraMeshStream(INVALID, 'train', on_error='skip', **kwargs)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match='ssl4eos12_train_0000101'):
        keys = [s['key'] for s in ds]
    assert keys == ['ssl4eos12_train_0000100', 'ssl4eos12_train_0000102']


def test_truncated_tar_names_shard_and_last_sample() -> None:
    kwargs = dict(
        modalities=['S1GRD', 'S2L1C'],
        shards=['ssl4eos12_shard_000004.tar'],
        shuffle=False,
    )
    ds = TerraMeshStream(INVALID, 'train', **kwargs)  # type: ignore[arg-type]
    with pytest.raises(
        TerraMeshFormatError,
        match=r'S2L1C/ssl4eos12_shard_000004\.tar: unreadable after sample '
        r'ssl4eos12_train_0000200',
    ):
        list(ds)
    ds = TerraMeshStream(INVALID, 'train', on_error='skip', **kwargs)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match='ssl4eos12_shard_000004'):
        keys = [s['key'] for s in ds]
    assert keys == ['ssl4eos12_train_0000200']


def test_misaligned_modalities_are_an_error(tmp_path: Path) -> None:
    for folder in ('S1GRD', 'S2L1C'):
        os.makedirs(tmp_path / 'train' / folder)
    name = 'ssl4eos12_shard_000003.tar'
    src = os.path.join(ROOT, 'train')
    (tmp_path / 'train' / 'S1GRD' / name).write_bytes(
        Path(src, 'S1GRD', name).read_bytes()
    )
    # The S2L1C file of this shard holds another shard's samples.
    (tmp_path / 'train' / 'S2L1C' / name).write_bytes(
        Path(src, 'S2L1C', 'ssl4eos12_shard_000004.tar').read_bytes()
    )
    ds = TerraMeshStream(str(tmp_path), 'train', ['S1GRD', 'S2L1C'], shuffle=False)
    with pytest.raises(
        TerraMeshFormatError,
        match=r'disagree at sample #0.*S1GRD/ssl4eos12_shard_000003\.tar: ssl4eos12_train_0000004',
    ):
        list(ds)


def test_file_urls_and_pipes() -> None:
    url = ds_keys(TerraMeshStream('file://' + ROOT, 'val', shuffle=False))
    assert url == ['majortom_val_0000000', 'ssl4eos12_val_0000001']
    shards = ['majortom_shard_000001.tar', 'ssl4eos12_shard_000009.tar']
    piped = TerraMeshStream(
        f'pipe:cat {ROOT}', 'val', ['S2L1C', 'DEM'], shards=shards, shuffle=False
    )
    assert ds_keys(piped) == url
    with pytest.raises(ValueError, match='pipe: root cannot be listed'):
        TerraMeshStream(f'pipe:cat {ROOT}', 'val', shards=shards)
    with pytest.raises(FileNotFoundError, match=r'nope\.tar'):
        TerraMeshStream(ROOT, 'val', shards=['nope.tar'])


def test_any_fsspec_url() -> None:
    fs = fsspec.filesystem('memory')
    for folder in ('S1GRD', 'S1RTC', 'S2L1C'):
        for name in os.listdir(os.path.join(ROOT, 'val', folder)):
            body = Path(ROOT, 'val', folder, name).read_bytes()
            fs.pipe(f'/tm-test/val/{folder}/{name}', body)
    try:
        ds = TerraMeshStream('memory://tm-test', 'val', shuffle=False)
        assert ds_keys(ds) == ['majortom_val_0000000', 'ssl4eos12_val_0000001']
    finally:
        fs.rm('/tm-test', recursive=True)


def ds_keys(ds: TerraMeshStream) -> list[str]:
    return [s['key'] for s in ds]


def test_epoch_seeded_shuffle_is_reproducible() -> None:
    ds = TerraMeshStream(ROOT, 'train', shuffle_buffer=4, seed=3)
    first = ds_keys(ds)
    assert ds_keys(ds) == first
    ds.set_epoch(1)
    second = ds_keys(ds)
    assert second != first
    assert sorted(first) == sorted(second) == sorted(TRAIN_KEYS)


def test_rank_comes_from_the_main_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '2')
    ds = TerraMeshStream(ROOT, 'train', shuffle=False)
    monkeypatch.delenv('RANK')  # what a worker without the variables would see
    monkeypatch.delenv('WORLD_SIZE')
    assert ds_keys(ds) == sorted(TRAIN_KEYS)[2:4] + sorted(TRAIN_KEYS)[6:8]


def test_nominal_epoch_repeats_only_after_a_full_pass() -> None:
    ds = TerraMeshStream(ROOT, 'train', samples_per_worker=11, shuffle_buffer=2)
    keys = ds_keys(ds)
    assert len(keys) == 11
    assert set(keys[:8]) == TRAIN_KEYS


def ddp_job(rank: int, world_size: int) -> list[str]:
    """In the suite's process group (tests/distributed.py): this rank's keys.

    Each rank reads one epoch through a data loader with two worker processes.
    """
    ds = TerraMeshStream(ROOT, 'train', shuffle_buffer=3, seed=5)
    ds.set_epoch(1)
    loader = DataLoader(
        ds, batch_size=None, num_workers=2, multiprocessing_context='fork'
    )
    return [s['key'] for s in loader]


def test_two_ranks_two_workers_see_every_sample_once(distributed: Results) -> None:
    per_rank = distributed['terramesh_coverage']
    assert all(len(k) == len(set(k)) for k in per_rank)
    assert not set(per_rank[0]) & set(per_rank[1])
    assert set(per_rank[0]) | set(per_rank[1]) == TRAIN_KEYS
    # Two ranks x two workers: each worker reads its own one of the four shards.
    assert [len(k) for k in per_rank] == [4, 4]


def empty_shards(root: Path, names: tuple[str, ...] = ('a.tar', 'b.tar')) -> str:
    """S1GRD and S2L1C folders whose tars are valid but hold no member."""
    for folder in ('S1GRD', 'S2L1C'):
        os.makedirs(root / 'train' / folder)
        for name in names:
            with tarfile.open(root / 'train' / folder / name, 'w'):
                pass
    return str(root)


def test_empty_shards_name_the_root(tmp_path: Path) -> None:
    root = empty_shards(tmp_path)
    for spw in (None, 4):
        ds = TerraMeshStream(root, 'train', ['S1GRD', 'S2L1C'], samples_per_worker=spw)
        with pytest.raises(TerraMeshFormatError) as info:
            list(ds)
        message = str(info.value)
        assert f'{root}/train' in message
        assert 'a.tar' in message
        assert 'b.tar' in message
        assert 'no readable sample' in message or 'no sample found' in message


def test_every_sample_skipped_stops_instead_of_spinning() -> None:
    # channels={'s2': 12} on 13-band data: every sample is invalid.
    for spw in (None, 4):
        ds = TerraMeshStream(
            ROOT,
            'train',
            ['S1GRD|S1RTC', 'S2L1C'],
            channels={'s2': 12},
            on_error='skip',
            samples_per_worker=spw,
            max_consecutive_skips=50,
        )
        with pytest.warns(UserWarning, match='expected 12'):
            with pytest.raises(TerraMeshFormatError) as info:
                list(ds)
        message = str(info.value)
        assert 'first skipped' in message
        assert '13 bands' in message
        assert 'expected 12' in message
    with pytest.raises(ValueError, match='max_consecutive_skips'):
        TerraMeshStream(ROOT, 'train', max_consecutive_skips=0)


def test_damaged_manifest_is_named(tmp_path: Path) -> None:
    root = tmp_path / 'shards'
    shutil.copytree(ROOT, root)
    manifest = root / 'train' / 'shards.json'
    for text in ('{"channels": {"S2L1C": 13', '[1, 2]'):
        manifest.write_text(text)
        with pytest.raises(TerraMeshFormatError, match='damaged manifest') as info:
            TerraMeshStream(str(root), 'train')
        assert str(manifest) in str(info.value)


BASELINES = os.path.join(ROOT, 'baselines')


def zarr_group(data: bytes) -> zarr.Group:
    # The dataset's own recipe, independent of the package (see zarr_bands).
    fs = fsspec.filesystem('zip', fo=io.BytesIO(data))
    store = zarr.storage.FsspecStore.from_mapper(fs.get_mapper(''), read_only=True)
    return zarr.open_consolidated(store, mode='r')


def baseline_images(split: str, mode: str) -> torch.Tensor:
    ds = TerraMeshStream(
        BASELINES,
        split,
        ['S2L1C'],
        shuffle=False,
        s2_harmonize=mode,  # type: ignore[arg-type]
    )
    return torch.stack([s['image_s2'] for s in ds])


def test_offset_products_read_like_pre_offset_ones_under_auto() -> None:
    old = baseline_images('pb0301', 'auto')
    new = baseline_images('pb0509', 'auto')
    assert old.dtype == new.dtype == torch.int16
    assert torch.equal(old, new)
    assert (old[..., 0, 0] == 0).all()  # no data stays no data
    raw_new = baseline_images('pb0509', 'never')
    assert torch.equal(
        raw_new[..., 1:, :] - old[..., 1:, :], torch.full_like(old[..., 1:, :], 1000)
    )
    assert (raw_new[..., 0, 0] == 0).all()
    assert torch.equal(baseline_images('pb0301', 'never'), old)
    assert torch.equal(
        baseline_images('pb0301', 'always')[..., 1:, :],
        (old[..., 1:, :] - 1000).clamp(min=1),
    )


def test_an_undated_source_warns_once_and_is_left_as_stored() -> None:
    with pytest.warns(UserWarning, match='cannot tell') as record:
        undated = baseline_images('undated', 'auto')
    assert len([w for w in record if 'cannot tell' in str(w.message)]) == 1
    assert torch.equal(undated, baseline_images('pb0301', 'never'))


def test_metadata_equal_the_files_values() -> None:
    ds = TerraMeshStream(
        ROOT, 'train', ['S1GRD|S1RTC', 'S2L1C', 'DEM'], shuffle=False, metadata=True
    )
    samples = list(ds)
    assert len(samples) == 8
    for s in samples:
        shard = s['shard']
        for name, folder in (('s2', 'S2L1C'), ('dem', 'DEM')):
            group = zarr_group(
                members(os.path.join(ROOT, 'train', folder, shard))[s['key']]
            )
            assert int(s[f'time_{name}']) == int(np.asarray(group['time'][...])[0])
            assert float(s['center_lat']) == float(np.asarray(group['center_lat'][...]))
            assert float(s['center_lon']) == float(np.asarray(group['center_lon'][...]))
        group = zarr_group(
            members(os.path.join(ROOT, 'train', 'S2L1C', shard))[s['key']]
        )
        assert torch.equal(
            s['cloud_mask_s2'], torch.from_numpy(np.asarray(group['cloud_mask'][...]))
        )
        assert 'cloud_mask_dem' not in s
        assert 'cloud_mask_s1' not in s
    assert int(samples[0]['time_dem']) == 0  # the DEM has no acquisition time
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch['time_s2'].shape == batch['center_lat'].shape == (4,)
    assert batch['time_s2'].dtype == torch.int64
    assert batch['center_lon'].dtype == torch.float64
    assert batch['cloud_mask_s2'].shape == (4, 8, 8)
    plain = next(iter(TerraMeshStream(ROOT, 'train', ['S2L1C'], shuffle=False)))
    assert not any(k.startswith(('time_', 'center_', 'cloud_mask')) for k in plain)


def test_cloud_filter_drops_exactly_the_samples_over_the_threshold() -> None:
    fractions = {}
    for tar in sorted(os.listdir(os.path.join(ROOT, 'train', 'S2L1C'))):
        for key, data in members(os.path.join(ROOT, 'train', 'S2L1C', tar)).items():
            mask = np.asarray(zarr_group(data)['cloud_mask'][...])
            fractions[key] = float((mask != 0).mean())
    threshold = sorted(fractions.values())[len(fractions) // 2]
    kept = {
        s['key']
        for s in TerraMeshStream(
            ROOT, 'train', ['S2L1C'], shuffle=False, max_cloud_fraction=threshold
        )
    }
    assert kept == {k for k, f in fractions.items() if f <= threshold}
    assert 0 < len(kept) < len(fractions)
    with pytest.raises(ValueError, match='max_cloud_fraction'):
        TerraMeshStream(ROOT, 'train', ['S2L1C'], max_cloud_fraction=1.5)
