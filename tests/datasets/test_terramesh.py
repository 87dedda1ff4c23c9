import io
import json
import os
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
