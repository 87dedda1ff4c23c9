"""Write any paired dataset into TerraMesh-layout WebDataset shards.

``write_shards(dataset, out)`` takes a map-style dataset whose samples are
``{'image_<name>': Tensor (C, H, W), ...}`` (SSL4EO-S12 pairs, BigEarthNet-MM,
chip folders, ...) and writes ``{out}/{split}/{name}/{prefix}_shard_{n:06d}.tar``,
one folder per modality. Sample ``i`` is the member
``{prefix}_{split}_{i:07d}.zarr.zip`` of shard ``i // samples_per_shard`` in every
modality folder: a zipped Zarr v2 group whose ``bands`` array (1, C, H, W) keeps
the tensor's dtype and values exactly, the layout
:class:`~torchgeo_decur.datasets.terramesh.TerraMeshStream` streams. The sample
metadata TerraMesh stores is kept where the sample has it: ``time_<name>`` (or
``time``; ns since the epoch), ``center_lat``, ``center_lon`` and
``cloud_mask_<name>`` (H, W) become the ``time``, ``center_lat``, ``center_lon``
and ``cloud_mask`` arrays of the modality's Zarr group. Other keys (labels) are
not written. Sentinel-2 values are written as the dataset returns them: readers
of Sentinel-2 of any date (e.g. :class:`~torchgeo_decur.datasets.PairedChips`)
harmonize them to the pre-2022 DN scale when read (``s2_harmonize``), and the
manifest records the mode they used.

Every shard is written to a temporary file in its folder and moved into place
with ``os.replace``, so a shard file is either complete or absent. ``shards.json``
in the split folder records the source, sample count and settings; a rerun with
the same settings keeps the shards that are complete in every modality folder and
writes the rest, so an interrupted conversion resumes where it stopped. Settings
that differ from the recorded ones are an error instead of a silent overwrite.
"""

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numcodecs
import numpy as np
import webdataset as wds
import zarr
from torch import Tensor
from zarr.storage import MemoryStore

from .terramesh import SAMPLE_EXTENSION, read_manifest

MANIFEST = 'shards.json'
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class SizedDataset(Protocol):
    """A map-style dataset: ``len`` and integer indexing."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


def encode_zarr_zip(
    bands: np.ndarray,
    compression: Literal['zstd', 'none'] = 'zstd',
    band_names: Sequence[str] | None = None,
    metadata: Mapping[str, np.ndarray] | None = None,
) -> bytes:
    """Encode a (C, H, W) array as a TerraMesh-style sample (a zipped Zarr group).

    Args:
        bands: Values; dtype and values are stored exactly.
        compression: ``'zstd'`` (lossless) or ``'none'`` for the chunk.
        band_names: Names for the ``band`` coordinate (default: ``b0``, ``b1``, ...).
        metadata: Any of ``time`` (ns since the epoch), ``center_lat``,
            ``center_lon`` (degrees) and ``cloud_mask`` (H, W), stored as in
            TerraMesh: ``time`` (time,), the centre as scalars, the mask (y, x).

    Returns:
        The ``.zarr.zip`` bytes.

    Raises:
        ValueError: If ``bands`` is not 3-D or the names do not match.
    """
    if bands.ndim != 3:
        raise ValueError(f'expected (C, H, W) values, got shape {bands.shape}')
    names = list(band_names) if band_names is not None else None
    if names is None:
        names = [f'b{i}' for i in range(bands.shape[0])]
    if len(names) != bands.shape[0]:
        raise ValueError(f'{len(names)} band names for {bands.shape[0]} bands')
    store: dict[str, Any] = {}
    group = zarr.open_group(MemoryStore(store), mode='w', zarr_format=2)
    data = np.ascontiguousarray(bands)[None]
    array = group.create_array(
        'bands',
        shape=data.shape,
        dtype=data.dtype,
        chunks=data.shape,
        compressors=numcodecs.Zstd(level=3) if compression == 'zstd' else None,
        attributes={'_ARRAY_DIMENSIONS': ['time', 'band', 'y', 'x']},
    )
    array[...] = data
    coord = group.create_array(
        'band',
        shape=(len(names),),
        dtype=np.array(names).dtype,
        chunks=(len(names),),
        compressors=None,
        attributes={'_ARRAY_DIMENSIONS': ['band']},
    )
    coord[...] = np.array(names)
    dims = {
        'time': ['time'],
        'center_lat': [],
        'center_lon': [],
        'cloud_mask': ['y', 'x'],
    }
    for key, value in (metadata or {}).items():
        if key not in dims:
            raise ValueError(f'unknown sample metadata {key!r}; known: {list(dims)}')
        value = np.asarray(value)
        if key == 'time':
            value = value.astype(np.int64).reshape(1)
        elif key == 'cloud_mask' and value.shape != bands.shape[1:]:
            raise ValueError(
                f'cloud_mask has shape {value.shape}, the bands {bands.shape[1:]}'
            )
        extra = group.create_array(
            key,
            shape=value.shape,
            dtype=value.dtype,
            chunks=value.shape if value.ndim else (),
            compressors=None,
            attributes={'_ARRAY_DIMENSIONS': dims[key]},
        )
        extra[...] = value
    zarr.consolidate_metadata(group.store)
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as zf:
        for key in sorted(store):
            zf.writestr(
                zipfile.ZipInfo(key, date_time=_FIXED_TIME), store[key].to_bytes()
            )
    return out.getvalue()


@dataclass
class ShardReport:
    """What :func:`write_shards` did.

    Attributes:
        written: Shard numbers written in this run.
        kept: Complete shard numbers found and kept from an earlier run.
        samples: Samples in the dataset.
        modalities: Modality folder names written.
    """

    written: list[int]
    kept: list[int]
    samples: int
    modalities: list[str]


def _file_mode() -> int:
    # mkstemp creates 0600 files; published shards get the usual umask mode.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_json(path: str, payload: dict[str, Any]) -> None:
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.shards-', suffix='.json.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(payload, f, indent=2, sort_keys=True)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _modalities_of(sample: dict[str, Any], where: str) -> dict[str, np.ndarray]:
    images = {}
    for key, value in sample.items():
        if not key.startswith('image_'):
            continue
        if not isinstance(value, Tensor | np.ndarray):
            raise TypeError(f'{where}: {key} is a {type(value).__name__}, not a tensor')
        array = value.numpy() if isinstance(value, Tensor) else value
        if array.ndim != 3:
            raise ValueError(f'{where}: {key} has shape {array.shape}, need (C, H, W)')
        images[key.removeprefix('image_')] = array
    if not images:
        raise ValueError(f'{where}: no image_<modality> key (keys: {sorted(sample)})')
    return images


def _metadata_of(sample: Mapping[str, Any], m: str) -> dict[str, np.ndarray]:
    """The TerraMesh metadata of modality ``m`` that a sample carries."""
    found = {
        'time': sample.get(f'time_{m}', sample.get('time')),
        'center_lat': sample.get('center_lat'),
        'center_lon': sample.get('center_lon'),
        'cloud_mask': sample.get(f'cloud_mask_{m}'),
    }
    return {
        k: v.numpy() if isinstance(v, Tensor) else np.asarray(v)
        for k, v in found.items()
        if v is not None
    }


def write_shards(
    dataset: SizedDataset,
    out: str,
    split: str = 'train',
    prefix: str = 'shard',
    samples_per_shard: int = 1000,
    compression: Literal['zstd', 'none'] = 'zstd',
    source: str = '',
    progress: Callable[[int, int], None] | None = None,
) -> ShardReport:
    """Write ``dataset`` as TerraMesh-layout shards (resuming an earlier run).

    Args:
        dataset: Map-style dataset of ``{'image_<name>': (C, H, W)}`` samples; every
            sample must have the same modalities, dtypes and band counts.
        out: Output root (a local directory).
        split: Split folder name.
        prefix: Shard and sample name prefix (e.g. ``'ssl4eos12'``).
        samples_per_shard: Samples per shard (the last one may hold fewer).
        compression: ``'zstd'`` or ``'none'`` for each sample's values.
        source: Free text recorded in the manifest (e.g. the dataset and root).
        progress: Called with (shards done, shards total) after each shard.

    Returns:
        Which shards were written and which kept.

    Raises:
        ValueError: If the dataset is empty, a sample is malformed or differs from
            the first, or an existing manifest is damaged (naming it) or records
            other settings.
    """
    if samples_per_shard < 1:
        raise ValueError(f'samples_per_shard must be positive, got {samples_per_shard}')
    total = len(dataset)
    if total == 0:
        raise ValueError('dataset is empty; nothing to write')
    first_sample = dataset[0]
    first = _modalities_of(first_sample, 'sample 0')
    layout = {
        name: {'dtype': str(a.dtype), 'channels': int(a.shape[0])}
        for name, a in first.items()
    }
    shards = (total + samples_per_shard - 1) // samples_per_shard
    manifest = {
        'format': 'terramesh-layout webdataset shards, one .zarr.zip per sample',
        'split': split,
        'prefix': prefix,
        'samples': total,
        'samples_per_shard': samples_per_shard,
        'shards': shards,
        'compression': compression,
        'modalities': layout,
        'channels': {name: v['channels'] for name, v in layout.items()},
        'source': source,
        # How the source's reader harmonized Sentinel-2 (None: it does not read
        # Sentinel-2 of any date, e.g. the pre-2022 SSL4EO-S12 and BigEarthNet).
        's2_harmonize': getattr(getattr(dataset, 'harmonizer', None), 'mode', None),
    }
    root = os.path.join(out, split)
    os.makedirs(root, exist_ok=True)
    manifest_path = os.path.join(root, MANIFEST)
    if os.path.exists(manifest_path):
        recorded = read_manifest(out, split) or {}
        if recorded != manifest:
            changed = sorted(
                k
                for k in set(recorded) | set(manifest)
                if recorded.get(k) != manifest.get(k)
            )
            raise ValueError(
                f'{manifest_path} records other settings ({", ".join(changed)}); '
                'write to a new directory or remove the old shards first'
            )
    else:
        _atomic_json(manifest_path, manifest)

    folders = {name: os.path.join(root, name) for name in layout}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
        # Leftovers of an interrupted run: never complete shards, always rewritten.
        for entry in os.listdir(folder):
            if entry.startswith('.') and entry.endswith('.tar.tmp'):
                os.remove(os.path.join(folder, entry))

    written, kept = [], []
    for n in range(shards):
        name = f'{prefix}_shard_{n:06d}.tar'
        paths = {m: os.path.join(folder, name) for m, folder in folders.items()}
        if all(os.path.exists(p) for p in paths.values()):
            kept.append(n)
            if progress is not None:
                progress(n + 1, shards)
            continue
        temps = {
            m: tempfile.mkstemp(prefix=f'.{name}-', suffix='.tar.tmp', dir=folder)
            for m, folder in folders.items()
        }
        files: dict[str, Any] = {}
        writers: dict[str, wds.TarWriter] = {}
        try:
            files = {m: os.fdopen(fd, 'wb') for m, (fd, _) in temps.items()}
            writers = {
                m: wds.TarWriter(f, keep_meta=False, mtime=0.0)
                for m, f in files.items()
            }
            for i in range(
                n * samples_per_shard, min(total, (n + 1) * samples_per_shard)
            ):
                where = f'sample {i}'
                sample = first_sample if i == 0 else dataset[i]
                images = _modalities_of(sample, where)
                if set(images) != set(layout):
                    raise ValueError(
                        f'{where} has modalities {sorted(images)}, sample 0 has '
                        f'{sorted(layout)}'
                    )
                key = f'{prefix}_{split}_{i:07d}'
                for m, array in images.items():
                    if (
                        str(array.dtype) != layout[m]['dtype']
                        or array.shape[0] != layout[m]['channels']
                    ):
                        raise ValueError(
                            f'{where}: image_{m} is {array.dtype} with {array.shape[0]} '
                            f'bands, sample 0 has {layout[m]["dtype"]} with '
                            f'{layout[m]["channels"]}'
                        )
                    writers[m].write(
                        {
                            '__key__': key,
                            SAMPLE_EXTENSION: encode_zarr_zip(
                                array, compression, metadata=_metadata_of(sample, m)
                            ),
                        }
                    )
            for m, w in writers.items():
                w.close()  # the tar end marker; the file object stays open
                files[m].flush()
                os.fsync(files[m].fileno())
                files[m].close()
            # Each modality file is complete before it gets its final name; a
            # shard counts as done only when every modality has it.
            for m, (_, tmp) in temps.items():
                os.chmod(tmp, _file_mode())
                os.replace(tmp, paths[m])
        except BaseException:
            for m, f in files.items():
                if m in writers and not f.closed:
                    writers[m].tarstream.close()  # into the discarded temp file
                f.close()
            for _, tmp in temps.values():
                # A real crash (kill, power loss) leaves these behind instead; the
                # next run removes them before it starts.
                if os.path.exists(tmp):
                    os.remove(tmp)
            raise
        written.append(n)
        if progress is not None:
            progress(n + 1, shards)
    return ShardReport(written, kept, total, sorted(layout))
