"""``torchgeo-decur embed`` over TerraMesh-layout shards, and with exported timm folders.

A tiny two-encoder task checkpoint (random ResNet-10t encoders, recorded band
statistics) is exported with ``torchgeo-decur export``; its checkpoint and its
per-modality timm folders embed the bundled TerraMesh shards. The vectors are
compared with the encoders applied to the samples as TerraMeshStream reads them,
the footprints with the samples' own coordinates reprojected by pyproj.
"""

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pytest
import shapely
import timm
import torch
import zarr
from lightning.pytorch import Callback, Trainer
from pyproj import CRS, Transformer
from torch import nn
from zarr.core.buffer import cpu
from zarr.storage import MemoryStore

from torchgeo_decur.callbacks import EmbeddingWriter
from torchgeo_decur.cli import main
from torchgeo_decur.datamodules.embedding import (
    SHARD_CRS,
    EmbeddingDataModule,
    shard_footprint,
)
from torchgeo_decur.datasets import PairedChips, TerraMeshStream
from torchgeo_decur.datasets.shards import encode_zarr_zip
from torchgeo_decur.datasets.terramesh import ZarrGeoreference
from torchgeo_decur.embeddings import (
    geoparquet_bytes,
    nearest_patches,
    part_table,
    read_embeddings,
)
from torchgeo_decur.tasks.embedding import EmbeddingTask
from torchgeo_decur.transforms import ClipNormalize

from .conftest import DATA, ROOT
from .test_embed import StopAfter

TRAIN = os.path.join(DATA, 'terramesh', 'train')
#: The bundled shards: majortom_* hold S1RTC, ssl4eos12_* S1GRD.
SHARDS = {'s1': os.path.join(TRAIN, 'S1GRD|S1RTC'), 's2': os.path.join(TRAIN, 'S2L1C')}
STATS = {
    's1': {'mean': [-12.0, -19.0], 'std': [3.0, 3.5]},
    's2': {'mean': [1200.0 + 10 * i for i in range(13)], 'std': [400.0] * 13},
}


def shard_args(shards: dict[str, str] = SHARDS) -> list[str]:
    out = []
    for m, folder in shards.items():
        out += ['--shards', f'{m}={folder}']
    return out


@pytest.fixture(scope='module')
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A task checkpoint of two random ResNet-10t encoders and its export."""
    folder = tmp_path_factory.mktemp('trained')
    encoders = {}
    for i, (m, chans) in enumerate((('s1', 2), ('s2', 13))):
        torch.manual_seed(i)
        encoders[m] = timm.create_model('resnet10t', in_chans=chans, num_classes=0)
    state = {
        f'backbones.{m}.{k}': v
        for m, e in encoders.items()
        for k, v in e.state_dict().items()
    }
    ckpt = {
        'epoch': 1,
        'global_step': 10,
        'state_dict': state,
        'hyper_parameters': {'modalities': ['s1', 's2'], 'model': 'resnet10t'},
        'datamodule_hyper_parameters': {'statistics': STATS},
    }
    torch.save(ckpt, folder / 'tiny.ckpt')
    out = folder / 'export'
    argv = ['export', str(folder / 'tiny.ckpt'), '--output-dir', str(out)]
    assert main(argv) == 0
    return {
        'ckpt': folder / 'tiny.ckpt',
        'timm': {m: out / f'tiny_{m}_timm' for m in encoders},
        'encoders': {m: e.eval() for m, e in encoders.items()},
    }


@pytest.fixture(scope='module')
def shard_run(
    trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The checkpoint over the bundled shards, through the command in-process."""
    out = tmp_path_factory.mktemp('shard_run')
    argv = ['embed', str(trained['ckpt']), str(out), *shard_args()]
    assert main([*argv, '--batch-size', '3', '--no-progress']) == 0
    return out


def expected(encoders: dict[str, nn.Module]) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Samples in shard order, read by TerraMeshStream, and their vectors."""
    stream = TerraMeshStream(
        os.path.join(DATA, 'terramesh'),
        'train',
        ('S1GRD|S1RTC', 'S2L1C'),
        shuffle=False,
        metadata=True,
    )
    samples = list(stream)
    vectors = []
    with torch.no_grad():
        for m in ('s1', 's2'):
            x = torch.stack([s[f'image_{m}'] for s in samples]).float()
            scale = ClipNormalize(STATS[m]['mean'], STATS[m]['std'])
            vectors.append(encoders[m](scale(x)).numpy())
    return samples, np.concatenate(vectors, axis=1)


def stored_footprint(shard: str, key: str) -> tuple[list[float], CRS]:
    """A bundled S2L1C sample's bounds and CRS, read from its own Zarr arrays."""
    path = os.path.join(TRAIN, 'S2L1C', shard)
    with tarfile.open(path) as tar:
        member = tar.extractfile(f'{key}.zarr.zip')
        assert member is not None
        data = member.read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        store = {n: cpu.Buffer.from_bytes(zf.read(n)) for n in zf.namelist()}
    group = zarr.open_consolidated(MemoryStore(store), mode='r', zarr_format=2)
    x, y = np.asarray(group['x'][...]), np.asarray(group['y'][...])
    crs = CRS.from_wkt(group['spatial_ref'].attrs['crs_wkt'])
    half = 10.0 / 2  # the bundled samples have 10 m pixels
    return [x.min() - half, y.min() - half, x.max() + half, y.max() + half], crs


def test_shard_samples_are_embedded_with_ids_footprints_and_settings(
    shard_run: Path, trained: dict[str, Any]
) -> None:
    emb = read_embeddings(shard_run / 'embeddings.parquet')
    samples, want = expected(trained['encoders'])
    assert emb.frame['patch_id'].tolist() == list(range(len(samples))) == list(range(8))
    assert emb.frame['shard'].tolist() == [s['shard'] for s in samples]
    assert emb.frame['key'].tolist() == [s['key'] for s in samples]
    np.testing.assert_allclose(emb.vectors['embedding'], want, atol=1e-6, rtol=0)
    frame = geopandas.read_parquet(shard_run / 'embeddings.parquet')
    assert frame.crs.to_epsg() == 4326
    assert (frame.geom_type == 'Polygon').all()
    # majortom_* samples lie in UTM zone 32N, ssl4eos12_* in 33N: one file.
    assert frame['crs'].tolist() == ['EPSG:32632'] * 4 + ['EPSG:32633'] * 4
    for i, s in enumerate(samples):
        bounds, crs = stored_footprint(s['shard'], s['key'])
        assert CRS.from_user_input(frame['crs'][i]) == crs
        got = [frame[n][i] for n in ('minx', 'miny', 'maxx', 'maxy')]
        np.testing.assert_allclose(got, bounds, rtol=0, atol=1e-6)
        to_lonlat = Transformer.from_crs(crs, 'EPSG:4326', always_xy=True)
        corners = [(bounds[a], bounds[b]) for a, b in ((0, 1), (2, 1), (2, 3), (0, 3))]
        lonlat = [to_lonlat.transform(*c) for c in corners]
        ring = np.asarray(frame.geometry[i].exterior.coords)[:-1]
        np.testing.assert_allclose(sorted(map(tuple, ring)), sorted(lonlat), atol=1e-9)
        # The footprint lies around the stored centre (80 m across).
        centre = shapely.Point(float(s['center_lon']), float(s['center_lat']))
        assert frame.geometry[i].centroid.distance(centre) < 1e-4
    meta = emb.metadata
    assert (meta['kind'], meta['model'], meta['modalities']) == (
        'shards',
        'resnet10t',
        ['s1', 's2'],
    )
    assert meta['inputs'] == SHARDS
    assert meta['scaling']['s2']['mean'] == STATS['s2']['mean']
    assert meta['on_missing'] == 'error'
    assert meta['skipped_shards'] == []
    assert not (shard_run / 'embeddings.tif').exists()
    # A coordinate inside a footprint picks that sample (sample 2 is 80 m
    # across around 9.02, 45.02); one outside every footprint the nearest.
    path = shard_run / 'embeddings.parquet'
    inside = (9.02 + 0.0003, 45.02 - 0.0002)
    assert frame.geometry[2].covers(shapely.Point(inside))
    found = nearest_patches(path, 3, point=inside)
    assert found == nearest_patches(path, 3, patch_id=2)
    assert nearest_patches(path, 3, point=(9.021, 45.019)) == found
    assert nearest_patches(path, 3, point=(15.05, 45.05)) == nearest_patches(
        path, 3, patch_id=5
    )
    assert all(
        re.fullmatch(r'\w+_shard_\d{6}\.tar:\w+_train_\d{7}', str(n.key)) for n in found
    )


def test_timm_folders_give_the_embeddings_of_their_checkpoint(
    shard_run: Path, trained: dict[str, Any], tmp_path: Path
) -> None:
    folders = [str(trained['timm'][m]) for m in ('s1', 's2')]
    argv = ['embed', *folders, str(tmp_path), *shard_args(), '--no-progress']
    assert main(argv) == 0
    got = read_embeddings(tmp_path / 'embeddings.parquet')
    want = read_embeddings(shard_run / 'embeddings.parquet')
    np.testing.assert_allclose(
        got.vectors['embedding'], want.vectors['embedding'], atol=1e-6, rtol=0
    )
    assert got.metadata['model'] == 'resnet10t'
    assert got.metadata['encoder'] == ' + '.join(folders)
    assert got.metadata['scaling'] == want.metadata['scaling']
    # One folder under another modality name: its encoder, renamed.
    task = EmbeddingTask([f'optical={folders[1]}'])
    assert task.modalities == ['optical']
    assert task.resolved.in_chans == {'optical': 13}


def predict(
    source: Path,
    out: Path,
    shards: dict[str, str] = SHARDS,
    callbacks: list[Callback] | None = None,
) -> EmbeddingWriter:
    writer = EmbeddingWriter(str(out))
    trainer = Trainer(
        accelerator='cpu',
        logger=False,
        callbacks=[writer, *(callbacks or [])],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data = EmbeddingDataModule(shards=shards, batch_size=3)
    trainer.predict(EmbeddingTask(str(source)), data, return_predictions=False)
    return writer


def test_an_interrupted_shard_run_resumes_and_refuses_changed_inputs(
    shard_run: Path, trained: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match='interrupted'):
        predict(trained['ckpt'], tmp_path, callbacks=[StopAfter(1)])
    other = SHARDS | {'s1': os.path.join(TRAIN, 'S1RTC|S1GRD')}
    with pytest.raises(ValueError, match=r'other settings \(inputs: .*S1RTC\|S1GRD'):
        predict(trained['ckpt'], tmp_path, other)
    writer = predict(trained['ckpt'], tmp_path)
    assert (writer.summary['patches'], writer.summary['written_now']) == (8, 5)
    resumed = read_embeddings(tmp_path / 'embeddings.parquet')
    whole = read_embeddings(shard_run / 'embeddings.parquet')
    np.testing.assert_allclose(
        resumed.vectors['embedding'], whole.vectors['embedding'], atol=1e-6, rtol=0
    )
    assert resumed.frame['key'].tolist() == whole.frame['key'].tolist()


def test_shards_of_the_shards_command_embed_without_geometry(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    root = os.path.join(DATA, 'ssl4eo_s12')
    argv = ['shards', 'ssl4eo-s12', '--root', root, '--out', str(tmp_path / 'sh')]
    argv += ['--seasons', '0', '--samples-per-shard', '2']
    assert main([*argv, '--init-args', '{"size": 12}']) == 0
    folders = {m: str(tmp_path / 'sh' / 'train' / m) for m in ('s1', 's2')}
    out = tmp_path / 'out'
    argv = ['embed', str(trained['ckpt']), str(out), *shard_args(folders)]
    assert main([*argv, '--no-progress']) == 0
    emb = read_embeddings(out / 'embeddings.parquet')
    n = len(emb.frame)
    assert n >= 3
    assert emb.frame['key'].tolist() == [f'ssl4eos12_train_{i:07d}' for i in range(n)]
    assert emb.frame['shard'].tolist()[:3] == [
        'ssl4eos12_shard_000000.tar',
        'ssl4eos12_shard_000000.tar',
        'ssl4eos12_shard_000001.tar',
    ]
    # These shards keep no centre: the geometry is null, the vectors are there.
    assert emb.frame.geometry.isna().all()
    assert np.isfinite(emb.vectors['embedding']).all()


@pytest.mark.parametrize(
    ('source', 'shards', 'message'),
    [
        # The joint checkpoint needs s1 too.
        (
            'ckpt',
            {'s2': SHARDS['s2']},
            r"needs the modalities \['s1', 's2'\]; shards .* has no \['s1'\]",
        ),
        # The S2 timm folder fed Sentinel-1 shards.
        (
            's2_timm',
            {'s2': SHARDS['s1']},
            r"modality 's2' of shards .* has 2 bands, which the input scaling",
        ),
        # A modality folder that does not exist.
        ('ckpt', SHARDS | {'s1': os.path.join(TRAIN, 'S1X')}, 'no folder S1X under'),
        # Folders of different splits.
        (
            'ckpt',
            SHARDS | {'s1': os.path.join(DATA, 'terramesh', 'val', 'S1GRD')},
            'are not in one split folder',
        ),
    ],
)
def test_shards_that_do_not_fit_the_encoder_are_named(
    trained: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    shards: dict[str, str],
    message: str,
) -> None:
    path = trained['ckpt'] if source == 'ckpt' else trained['timm']['s2']
    argv = ['embed', str(path), str(tmp_path), *shard_args(shards), '--no-progress']
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith('torchgeo-decur embed: error: ')
    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / 'embeddings.parquet').exists()


def test_shards_lacking_a_modality_are_one_line_from_the_command(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    """majortom_* shards have no S1GRD: the real command names the shard."""
    shards = SHARDS | {'s1': os.path.join(TRAIN, 'S1GRD')}
    argv = ['embed', str(trained['ckpt']), str(tmp_path), *shard_args(shards)]
    proc = subprocess.run(
        [sys.executable, '-m', 'torchgeo_decur.cli', *argv],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        'torchgeo-decur embed: error: shard majortom_shard_000001'
    )
    assert 'has no file for modality S1GRD' in lines[0]
    # The advice names what the command offers, not the library's argument.
    assert '--on-missing skip' in lines[0]
    assert 'on_missing=' not in lines[0]


def test_on_missing_skip_leaves_out_shards_lacking_a_modality(
    trained: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The skipped shards are named in the summary and the file's settings."""
    shards = SHARDS | {'s1': os.path.join(TRAIN, 'S1GRD')}
    argv = ['embed', str(trained['ckpt']), str(tmp_path), *shard_args(shards)]
    with pytest.warns(UserWarning, match='skipped 2 shard'):
        assert main([*argv, '--on-missing', 'skip', '--no-progress']) == 0
    skipped = ['majortom_shard_000001.tar', 'majortom_shard_000002.tar']
    out = capsys.readouterr().out
    assert 'embedded 4 patches' in out
    assert '2 shard(s) lacking a modality skipped: ' + ', '.join(skipped) in out
    emb = read_embeddings(tmp_path / 'embeddings.parquet')
    assert set(emb.frame['shard']) == {
        'ssl4eos12_shard_000003.tar',
        'ssl4eos12_shard_000004.tar',
    }
    assert (emb.metadata['on_missing'], emb.metadata['skipped_shards']) == (
        'skip',
        skipped,
    )
    argv = ['embed', str(trained['ckpt']), str(tmp_path / 'r'), '--on-missing']
    assert main([*argv, 'skip', '--raster', f's2={DATA}/own_rasters/s2']) == 1
    assert '--on-missing applies to shards' in capsys.readouterr().err


#: Acquisition time (ns) of the written samples: before the 2022 DN offset.
JUNE_2021 = 1_623_751_200_000_000_000


def write_shard(folder: Path, samples: list[dict[str, np.ndarray]]) -> None:
    """One S2L1C shard of samples as torchgeo-decur shards encodes them."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with tarfile.open(folder / 'x_shard_000000.tar', 'w') as tar:
        for i, metadata in enumerate(samples):
            bands = rng.integers(500, 3000, (13, 8, 8)).astype(np.int16)
            data = encode_zarr_zip(
                bands, metadata={'time': np.array(JUNE_2021), **metadata}
            )
            info = tarfile.TarInfo(f'x_{i:07d}.zarr.zip')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_shard_samples_without_coordinates_get_their_centre_or_nothing(
    tmp_path: Path,
) -> None:
    """Centre points and null geometries beside reprojected footprints."""
    write_shard(
        tmp_path / 'train' / 'S2L1C',
        [{'center_lon': np.array(9.5), 'center_lat': np.array(46.25)}, {}],
    )
    data = EmbeddingDataModule(shards={'s2': str(tmp_path / 'train' / 'S2L1C')})
    data.setup('predict')
    batch = next(iter(data.predict_dataloader()))
    assert batch['crs'] == [SHARD_CRS, '']
    np.testing.assert_array_equal(batch['bounds'][0], [9.5, 46.25, 9.5, 46.25])
    assert torch.isnan(batch['bounds'][1]).all()
    # With a footprint in UTM 32N, as the writer merges a batch of a shard run.
    utm = [500_000.0, 5_000_000.0, 500_080.0, 5_000_080.0]
    bounds = np.concatenate([[utm], batch['bounds'].numpy()])
    crs = ['EPSG:32632', *batch['crs']]
    table = part_table(np.arange(3), bounds, {'embedding': np.ones((3, 2))}, crs)
    buffer = geoparquet_bytes(table, SHARD_CRS, {'kind': 'shards'})
    frame = geopandas.read_parquet(io.BytesIO(buffer))
    assert frame.crs.to_epsg() == 4326
    assert frame.geom_type.tolist()[:2] == ['Polygon', 'Point']
    assert frame.geometry[2] is None
    assert frame['crs'][0] == 'EPSG:32632'
    assert frame['crs'][1:].isna().all()
    assert frame['minx'][0] == utm[0]
    assert np.isnan(frame['minx'][1:]).all()
    to_lonlat = Transformer.from_crs(32632, 4326, always_xy=True)
    corners = [(utm[a], utm[b]) for a, b in ((0, 1), (2, 1), (2, 3), (0, 3))]
    want = [to_lonlat.transform(*c) for c in corners]
    ring = np.asarray(frame.geometry[0].exterior.coords)[:-1]
    np.testing.assert_allclose(sorted(map(tuple, ring)), sorted(want), atol=1e-9)
    assert (frame.geometry[1].x, frame.geometry[1].y) == (9.5, 46.25)


def test_a_crs_pyproj_cannot_read_falls_back_to_the_centre() -> None:
    x = 500_005.0 + 10.0 * np.arange(4)
    y = 5_000_035.0 - 10.0 * np.arange(4)
    fake = 'PROJCS["WGS 84 / UTM zone 32N",GEOGCS["WGS 84"],UNIT["metre",1]]'
    with pytest.warns(UserWarning, match='pyproj cannot read it'):
        got = shard_footprint(ZarrGeoreference(x, y, fake), 9.0, 45.1)
    assert got == ([9.0, 45.1, 9.0, 45.1], SHARD_CRS)
    wkt = CRS.from_epsg(32632).to_wkt()
    got = shard_footprint(ZarrGeoreference(x, y, wkt), 9.0, 45.1)
    assert got == ([500_000.0, 5_000_000.0, 500_040.0, 5_000_040.0], 'EPSG:32632')
    assert shard_footprint(None, None, None)[1] == ''


def ddp_job(rank: int, world_size: int) -> dict[str, Any]:
    """In the suite's process group (tests/distributed.py): shards on two ranks.

    Lightning joins the existing group (the variables of an external launcher
    give the rank). Both ranks write into one folder, made by rank 0.

    Returns:
        Per rank, the ids it wrote; on rank 0 also the merged ids and keys.
    """
    import torch.distributed as dist

    os.environ |= {
        'WORLD_SIZE': str(world_size),
        'RANK': str(rank),
        'LOCAL_RANK': str(rank),
        'NODE_RANK': '0',
    }
    folder = [tempfile.mkdtemp() if rank == 0 else '']
    dist.broadcast_object_list(folder, src=0)
    root = Path(folder[0])
    torch.manual_seed(0)
    encoder = timm.create_model('resnet10t', in_chans=13, num_classes=0)
    source = root / 'tiny_s2_decur.pth'
    scaling = root / 'tiny_input_scaling.json'
    if rank == 0:
        torch.save(encoder.state_dict(), source)
        scaling.write_text(json.dumps({'statistics': {'s2': STATS['s2']}}))
    dist.barrier()
    written: list[int] = []

    class Recording(EmbeddingWriter):
        def write_on_batch_end(
            self, trainer: Trainer, pl_module: Any, prediction: Any, *args: Any
        ) -> None:
            super().write_on_batch_end(trainer, pl_module, prediction, *args)
            written.extend(int(i) for i in prediction['patch_id'])

    writer = Recording(str(root / 'out'))
    trainer = Trainer(
        accelerator='cpu',
        devices=world_size,
        strategy='ddp',
        logger=False,
        callbacks=[writer],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data = EmbeddingDataModule(shards={'s2': SHARDS['s2']}, batch_size=2)
    trainer.predict(EmbeddingTask(str(source)), data, return_predictions=False)
    out: dict[str, Any] = {'written': written}
    if rank == 0:
        emb = read_embeddings(root / 'out' / 'embeddings.parquet')
        out['ids'] = emb.frame['patch_id'].tolist()
        out['keys'] = emb.frame['key'].tolist()
        out['parts_left'] = (root / 'out' / '.parts').exists()
    dist.barrier()
    return out


def test_two_ranks_write_every_shard_sample_once(distributed: Any) -> None:
    ranks = distributed['embed_shards']
    first, second = ranks[0]['written'], ranks[1]['written']
    assert first, 'rank 0 wrote samples'
    assert second, 'rank 1 wrote samples'
    assert not set(first) & set(second)
    assert sorted(first + second) == ranks[0]['ids'] == list(range(8))
    assert ranks[0]['keys'][0] == 'majortom_train_0000000'
    assert not ranks[0]['parts_left']


def test_the_data_of_a_fit_config_are_embedded_as_pretrained(
    shard_run: Path,
    trained: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--config reads the data section of TerraMesh, chip and own-raster configs."""
    monkeypatch.chdir(ROOT)  # the recipes' paths are relative to the checkout
    config = tmp_path / 'terramesh.yaml'
    data = {
        'class_path': 'torchgeo_decur.datamodules.TerraMeshDataModule',
        'init_args': {
            'root': os.path.join(DATA, 'terramesh'),
            'split': 'train',
            'modalities': ['S1GRD|S1RTC', 'S2L1C'],
        },
    }
    config.write_text(json.dumps({'data': data}))  # JSON is YAML
    base = ['embed', str(trained['ckpt']), '--no-progress']
    assert main([*base, str(tmp_path / 'tm'), '--config', str(config)]) == 0
    got = read_embeddings(tmp_path / 'tm' / 'embeddings.parquet')
    want = read_embeddings(shard_run / 'embeddings.parquet')
    np.testing.assert_allclose(
        got.vectors['embedding'], want.vectors['embedding'], atol=1e-6, rtol=0
    )
    # The chips recipe pairs S1_<key> with <key>_S2 by its pattern.
    recipe = os.path.join('conf', 'decur_chips.yaml')
    assert main([*base, str(tmp_path / 'chips'), '--config', recipe]) == 0
    chips = read_embeddings(tmp_path / 'chips' / 'embeddings.parquet')
    folders = {m: os.path.join(DATA, 'chips', m) for m in ('s1', 's2')}
    pattern = {'s1': 'S1_(?P<key>.+)', 's2': '(?P<key>.+)_S2'}
    with pytest.warns(UserWarning, match='skip'):  # the recipe skips a bad chip
        paired = PairedChips(folders, pattern, on_invalid='skip')
    assert chips.frame['key'].tolist() == list(paired.keys)
    assert chips.metadata['chip_options']['pattern']['s2'] == '(?P<key>.+)_S2'
    recipe = os.path.join('conf', 'decur_own_rasters.yaml')
    argv = [*base, str(tmp_path / 'rasters'), '--config', recipe, '--no-geotiff']
    assert main([*argv, '--patch-size', '32', '--stride', '48']) == 0
    rasters = read_embeddings(tmp_path / 'rasters' / 'embeddings.parquet')
    assert rasters.metadata['inputs'] == {
        's1': ['tests/data/own_rasters/s1'],
        's2': ['tests/data/own_rasters/s2'],
    }
    capsys.readouterr()
    recipe = os.path.join('conf', 'decur_ssl4eo_s12_rn50.yaml')
    assert main([*base, str(tmp_path / 'other'), '--config', recipe]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert 'trains on torchgeo_decur.datamodules.SSL4EOS12PairsDataModule' in err[0]
