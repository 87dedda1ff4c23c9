"""Stream TerraMesh-layout WebDataset shards: one folder of tar shards per modality.

TerraMesh (IBM / ESA, CC-BY-SA-4.0, https://huggingface.co/datasets/ibm-esa-geospatial/TerraMesh)
is laid out as ``{root}/{split}/{MODALITY}/{shard}.tar``: every modality has its own
folder of tar shards with identical file names, and shard ``X`` of every modality
holds the same samples in the same order, each sample one member
``{sample}.zarr.zip``, a zipped Zarr (v2 format, consolidated metadata) group whose
``bands`` array (dimensions ``time, band, y, x``) holds the values and whose
``band`` coordinate names the bands; ``time``, ``center_lat``, ``center_lon``
and ``spatial_ref`` (the CRS) sit beside it. Samples are matched across modality
folders by shard file name and sample name. SSL4EO-S12-derived shards
(``ssl4eos12_*``) carry Sentinel-1 as ``S1GRD`` only, MajorTOM shards
(``majortom_*``) as ``S1RTC`` only, so a modality can be given as alternatives
(``'S1GRD|S1RTC'``): each shard then uses the version it has.

:class:`TerraMeshStream` streams any subset of modalities with the ``webdataset``
library's building blocks: the shard groups are shuffled with an epoch seed,
split across DDP ranks (by the rank read in the main process) and DataLoader
workers (``split_by_worker``), read with webdataset's tar reader, shuffled in
webdataset's sample buffer and decoded in the worker. Shards are opened from local paths, ``file://`` URLs, ``pipe:``
commands (through webdataset) or any fsspec URL (``s3://``, ``gs://``,
``https://`` ... with the matching fsspec backend installed).

The same layout is what ``torchgeo-decur shards`` writes from any paired dataset
of this package (:mod:`torchgeo_decur.datasets.shards`), so one reader serves both.
"""

import io
import json
import random
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any, Literal, cast
from urllib.parse import urlparse

import fsspec
import numpy as np
import torch
import webdataset as wds
import zarr
from torch.utils.data import IterableDataset
from webdataset.tariterators import base_plus_ext, tar_file_expander
from zarr.core.buffer import Buffer, cpu
from zarr.storage import MemoryStore

from ..options import option
from ..transforms.harmonize import (
    S2Harmonize,
    S2Harmonizer,
    check_s2_harmonize,
    date_from_ns,
)
from .rasters import RasterReadError, check_values

#: Modality folders of the published dataset.
TERRAMESH_MODALITIES = (
    'DEM',
    'LULC',
    'NDVI',
    'S1GRD',
    'S1RTC',
    'S2L1C',
    'S2L2A',
    'S2RGB',
)

#: Bands per modality as published (S-2 L1C 13, L2A 12 without B10, RGB 3,
#: S-1 VV and VH, and one band each for NDVI, the Copernicus DEM and land cover).
TERRAMESH_CHANNELS: dict[str, int] = {
    'DEM': 1,
    'LULC': 1,
    'NDVI': 1,
    'S1GRD': 2,
    'S1RTC': 2,
    'S2L1C': 13,
    'S2L2A': 12,
    'S2RGB': 3,
}

#: Default output names: ``image_<name>``; S-1 and S-2 map to the ``s1``/``s2``
#: modality names the DeCUR task and the SSL4EO-S12 data module use.
DEFAULT_NAMES: dict[str, str] = {
    'DEM': 'dem',
    'LULC': 'lulc',
    'NDVI': 'ndvi',
    'S1GRD': 's1',
    'S1RTC': 's1',
    'S2L1C': 's2',
    'S2L2A': 's2',
    'S2RGB': 'rgb',
}

#: Folders of Sentinel-2 digital numbers (``S2RGB`` is an 8-bit rendering).
S2_DN_FOLDERS = ('S2L1C', 'S2L2A')

#: Member extension of one sample in a shard.
SAMPLE_EXTENSION = 'zarr.zip'

Policy = Literal['error', 'skip']

#: Samples skipped in a row (``on_error='skip'``) after which a stream gives up:
#: past this, the data (or a setting such as ``channels``) is wrong, not a sample.
MAX_CONSECUTIVE_SKIPS = 1000


class TerraMeshFormatError(ValueError):
    """A shard or sample does not have the expected layout or content."""


class MissingModalityError(TerraMeshFormatError):
    """A shard has no file for a requested modality (``on_missing='error'``).

    Attributes:
        problem: Which shard lacks which modality, without advice (callers that
            offer the policy under another name word their own).
    """

    def __init__(self, problem: str, advice: str) -> None:
        """Initialize a new MissingModalityError instance.

        Args:
            problem: Which shard lacks which modality.
            advice: What the caller can do about it.
        """
        super().__init__(f'{problem}; {advice}')
        self.problem = problem


@dataclass(frozen=True)
class ModalitySpec:
    """One requested modality: its output name and the folders that may hold it.

    Attributes:
        name: Output name; samples carry ``image_<name>``.
        versions: Folder names, in order of preference (e.g. ``('S1GRD', 'S1RTC')``).
    """

    name: str
    versions: tuple[str, ...]


@dataclass(frozen=True)
class ShardGroup:
    """The tar files of one shard, one per requested modality.

    Attributes:
        shard: Shard file name shared by all modality folders.
        urls: Output name -> URL of that modality's tar file.
        versions: Output name -> index into the modality's ``versions``.
    """

    shard: str
    urls: dict[str, str] = field(hash=False)
    versions: dict[str, int] = field(hash=False)


def parse_modalities(
    modalities: Sequence[str], names: Mapping[str, str] | None = None
) -> tuple[ModalitySpec, ...]:
    """Turn ``['S1GRD|S1RTC', 'S2L2A']`` into modality specs with output names.

    Args:
        modalities: Folder names; ``'A|B'`` takes whichever of A and B a shard has
            (A first).
        names: Output name per entry of ``modalities`` (default: :data:`DEFAULT_NAMES`
            for published folders, else the folder name itself).

    Returns:
        One spec per entry.

    Raises:
        ValueError: If nothing is requested, an entry is empty, the default names
            of alternatives disagree, or two entries get the same output name.
    """
    if not modalities:
        raise ValueError('modalities must name at least one modality folder')
    names = dict(names or {})
    unknown = sorted(set(names) - set(modalities))
    if unknown:
        raise ValueError(
            f'names has entries {unknown} that are not in modalities {list(modalities)}'
        )
    specs = []
    for entry in modalities:
        versions = tuple(v.strip() for v in entry.split('|'))
        if not all(versions) or len(set(versions)) != len(versions):
            raise ValueError(f'malformed modality entry {entry!r}')
        if entry in names:
            name = names[entry]
        else:
            defaults = {DEFAULT_NAMES.get(v, v) for v in versions}
            if len(defaults) != 1:
                raise ValueError(
                    f'the alternatives in {entry!r} have different default names '
                    f'{sorted(defaults)}; give one with names={{{entry!r}: ...}}'
                )
            name = defaults.pop()
        specs.append(ModalitySpec(name, versions))
    taken = [s.name for s in specs]
    if len(set(taken)) != len(taken):
        raise ValueError(
            f'modalities {list(modalities)} map to duplicate output names {taken}; '
            'pass distinct names'
        )
    return tuple(specs)


def _join(root: str, *parts: str) -> str:
    return '/'.join([root.rstrip('/'), *parts])


def open_url(url: str) -> IO[bytes]:
    """Open a shard for reading.

    Args:
        url: Local path, ``file://`` URL, ``pipe:command`` or any fsspec URL.

    Returns:
        A binary file object.
    """
    scheme = urlparse(url).scheme
    if scheme in ('', 'file', 'pipe') or len(scheme) == 1:  # 1: Windows drive
        return cast(IO[bytes], wds.gopen(url, 'rb'))
    return cast(IO[bytes], fsspec.open(url, 'rb').open())


def list_tar_files(folder: str) -> list[str]:
    """File names of the tar shards in a folder (sorted).

    Args:
        folder: Local path or fsspec URL of one modality folder.

    Returns:
        Shard file names (not paths).

    Raises:
        FileNotFoundError: If the folder does not exist.
    """
    fs, path = fsspec.core.url_to_fs(folder)
    if not fs.isdir(path):
        raise FileNotFoundError(f'modality folder not found: {folder}')
    found = fs.ls(path, detail=False)
    return sorted(
        str(p).rstrip('/').rsplit('/', 1)[-1] for p in found if str(p).endswith('.tar')
    )


def find_shard_groups(
    root: str,
    split: str,
    specs: Sequence[ModalitySpec],
    shards: Sequence[str] | None = None,
    on_missing: Policy = 'error',
) -> list[ShardGroup]:
    """Match the shards of all requested modalities by file name.

    Args:
        root: Dataset root (local path or fsspec URL) holding ``{split}/{MODALITY}``.
        split: Split folder, e.g. ``'train'`` or ``'val'``.
        specs: Requested modalities from :func:`parse_modalities`.
        shards: Shard file names to use (default: every ``*.tar`` found in the
            folders). Required for ``pipe:`` roots, which cannot be listed (and
            so cannot resolve alternatives).
        on_missing: What to do with a shard that some requested modality (none of
            its alternatives) lacks: ``'error'`` or ``'skip'`` it with a warning.

    Returns:
        One group per usable shard, sorted by shard name.

    Raises:
        FileNotFoundError: If a modality folder does not exist (every alternative
            missing), or no shard is left.
        MissingModalityError: If a shard lacks a modality and
            ``on_missing='error'``.
    """
    listing: dict[str, set[str]] = {}
    for spec in specs:
        present = []
        for version in spec.versions:
            folder = _join(root, split, version)
            if root.startswith('pipe:'):
                # A command cannot be listed: trust the given shard names.
                if shards is None or len(spec.versions) > 1:
                    raise ValueError(
                        f'a pipe: root cannot be listed; pass shards=[...] and no '
                        f'alternatives (got {"|".join(spec.versions)!r})'
                    )
                listing[version] = set(shards)
                present.append(version)
                continue
            try:
                listing[version] = set(list_tar_files(folder))
                present.append(version)
            except FileNotFoundError:
                listing[version] = set()
        if not present:
            raise FileNotFoundError(
                f'modality {spec.name!r}: no folder {" or ".join(spec.versions)} under '
                f'{_join(root, split)}'
            )
    names = (
        sorted(set(shards))
        if shards is not None
        else sorted(set().union(*listing.values()))
    )
    if shards is not None and not root.startswith('pipe:'):
        unknown = sorted(set(shards) - set().union(*listing.values()))
        if unknown:
            raise FileNotFoundError(
                f'shards {unknown} are in no requested modality folder under '
                f'{_join(root, split)}'
            )
    groups: list[ShardGroup] = []
    skipped: list[str] = []
    for shard in names:
        urls: dict[str, str] = {}
        versions: dict[str, int] = {}
        lacking = []
        for spec in specs:
            for i, version in enumerate(spec.versions):
                if shard in listing[version]:
                    urls[spec.name] = _join(root, split, version, shard)
                    versions[spec.name] = i
                    break
            else:
                lacking.append('|'.join(spec.versions))
        if lacking:
            message = (
                f'shard {shard} under {_join(root, split)} has no file for modality '
                f'{", ".join(lacking)}'
            )
            if on_missing == 'error':
                raise MissingModalityError(
                    message,
                    f'pass {option("on_missing", "skip")} to leave such shards out '
                    "or give alternatives such as 'S1GRD|S1RTC'",
                )
            skipped.append(shard)
            continue
        groups.append(ShardGroup(shard, urls, versions))
    if skipped:
        warnings.warn(
            f'skipped {len(skipped)} shard(s) lacking a requested modality under '
            f'{_join(root, split)}: {skipped}',
            stacklevel=2,
        )
    if not groups:
        raise FileNotFoundError(
            f'no shard under {_join(root, split)} has all of '
            f'{["|".join(s.versions) for s in specs]}'
        )
    return groups


@dataclass
class ZarrSample:
    """One decoded Zarr zip.

    Attributes:
        bands: Values (C, H, W) or (T, C, H, W), in the stored dtype (raw units).
        band_names: Names from the ``band`` coordinate, if present.
        time: Acquisition time in ns since the epoch per time step (0: none).
        center_lat: Latitude of the sample's centre in degrees, if stored.
        center_lon: Longitude of the sample's centre in degrees, if stored.
        cloud_mask: (H, W) cloud mask of optical products (non-zero: cloud), if
            stored and asked for.
    """

    bands: np.ndarray
    band_names: list[str] | None
    time: np.ndarray | None
    center_lat: float | None = None
    center_lon: float | None = None
    cloud_mask: np.ndarray | None = None


def _open_zarr_zip(data: bytes, where: str, skip: str | None = None) -> zarr.Group:
    """The Zarr v2 group (consolidated metadata) of a zipped sample.

    Args:
        data: The ``.zarr.zip`` bytes.
        where: Shard and sample, for error messages.
        skip: Leave out the chunks of this array (their bytes are not copied).

    Raises:
        TerraMeshFormatError: If the zip or its Zarr metadata cannot be read.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members: dict[str, Buffer] = {
                n: cpu.Buffer.from_bytes(zf.read(n))
                for n in zf.namelist()
                if skip is None
                or not n.startswith(f'{skip}/')
                or n.rsplit('/')[-1].startswith('.')
            }
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise TerraMeshFormatError(f'{where}: not a readable zip ({exc})') from exc
    try:
        return zarr.open_consolidated(MemoryStore(members), mode='r', zarr_format=2)
    except Exception as exc:
        raise TerraMeshFormatError(
            f'{where}: no readable Zarr v2 group with consolidated metadata ({exc!r})'
        ) from exc


@dataclass
class ZarrGeoreference:
    """Where a sample lies, as xarray/rioxarray store it.

    Attributes:
        x: (W,) pixel-centre x coordinates in CRS units.
        y: (H,) pixel-centre y coordinates in CRS units.
        crs: The CRS as stored (WKT from the grid mapping's ``crs_wkt`` or
            ``spatial_ref`` attribute).
    """

    x: np.ndarray
    y: np.ndarray
    crs: str


def read_zarr_georeference(data: bytes, where: str) -> ZarrGeoreference | None:
    """The pixel-centre coordinates and CRS of one TerraMesh sample.

    The grid mapping is the variable named by the ``grid_mapping`` attribute of
    ``bands`` (default ``spatial_ref``); the band values are not read.

    Args:
        data: The ``.zarr.zip`` bytes.
        where: Shard and sample, for error messages.

    Returns:
        The coordinates and CRS text, or None when the sample lacks 1-D ``x`` or
        ``y`` coordinates or a CRS attribute.

    Raises:
        TerraMeshFormatError: If the zip or its Zarr metadata cannot be read.
    """
    group = _open_zarr_zip(data, where, skip='bands')
    mapping = 'spatial_ref'
    if 'bands' in group:
        mapping = str(group['bands'].attrs.get('grid_mapping', mapping))
    if not {'x', 'y', mapping} <= set(group.keys()):
        return None
    attrs = group[mapping].attrs
    crs = attrs.get('crs_wkt', attrs.get('spatial_ref'))
    x = _read(group, 'x', where)
    y = _read(group, 'y', where)
    if not isinstance(crs, str) or not crs or x.ndim != 1 or y.ndim != 1:
        return None
    return ZarrGeoreference(x.astype(np.float64), y.astype(np.float64), crs)


def read_zarr_zip(
    data: bytes, where: str, time_step: int | None = None, cloud_mask: bool = False
) -> ZarrSample:
    """Decode one TerraMesh sample (a zipped, consolidated Zarr v2 group).

    Args:
        data: The ``.zarr.zip`` bytes.
        where: Shard and sample, for error messages.
        time_step: Index along ``time`` to keep when there are several (None: a
            multi-temporal sample is an error).
        cloud_mask: Also read the ``cloud_mask`` array, where there is one.

    Returns:
        The bands (C, H, W) and their metadata.

    Raises:
        TerraMeshFormatError: If the zip, its Zarr metadata or ``bands`` is
            missing or malformed.
    """
    group = _open_zarr_zip(data, where)
    if 'bands' not in group:
        raise TerraMeshFormatError(
            f'{where}: the Zarr group has no "bands" array (has {sorted(group.keys())})'
        )
    array = group['bands']
    raw_dims = array.attrs.get('_ARRAY_DIMENSIONS', ['time', 'band', 'y', 'x'])
    if not isinstance(raw_dims, list):
        raise TerraMeshFormatError(f'{where}: malformed _ARRAY_DIMENSIONS {raw_dims!r}')
    dims = [str(d) for d in raw_dims]
    values = _read(group, 'bands', where)
    if values.ndim != len(dims) or not {'band', 'y', 'x'} <= set(dims):
        raise TerraMeshFormatError(
            f'{where}: "bands" has shape {values.shape} and dimensions {dims}; '
            'expected (time, band, y, x) or (band, y, x)'
        )
    order = [d for d in ('time', 'band', 'y', 'x') if d in dims]
    values = np.transpose(values, [dims.index(d) for d in order])
    if 'time' in order:
        steps = values.shape[0]
        if steps == 1:
            values = values[0]
        elif time_step is None:
            raise TerraMeshFormatError(
                f'{where}: {steps} time steps; choose one with time_step'
            )
        elif not -steps <= time_step < steps:
            raise TerraMeshFormatError(
                f'{where}: time_step {time_step} out of range for {steps} steps'
            )
        else:
            values = values[time_step]
    names = None
    if 'band' in group:
        names = [str(b) for b in _read(group, 'band', where).tolist()]
        if len(names) != values.shape[0]:
            raise TerraMeshFormatError(
                f'{where}: "band" names {names} do not match {values.shape[0]} bands'
            )
    time = _read(group, 'time', where) if 'time' in group else None
    if time is not None and time.ndim == 1 and time.shape[0] > 1 and time_step:
        time = time[time_step : time_step + 1 or None]
    centre = {
        k: float(_read(group, k, where).reshape(-1)[0]) if k in group else None
        for k in ('center_lat', 'center_lon')
    }
    mask = None
    if cloud_mask and 'cloud_mask' in group:
        mask = _read(group, 'cloud_mask', where)
        if mask.ndim == 3:  # (time, y, x)
            mask = mask[0 if mask.shape[0] == 1 else (time_step or 0)]
    return ZarrSample(
        np.ascontiguousarray(values),
        names,
        time,
        centre['center_lat'],
        centre['center_lon'],
        None if mask is None else np.ascontiguousarray(mask),
    )


def check_sample_values(bands: np.ndarray, where: str) -> None:
    """Refuse a sample with a band of no finite value; warn about constant bands.

    Args:
        bands: (C, H, W) values of one sample.
        where: Shard and sample, for the messages.

    Raises:
        TerraMeshFormatError: If a band holds only NaN/inf.
    """
    try:
        check_values(bands, where)
    except RasterReadError as err:
        raise TerraMeshFormatError(str(err)) from None


def _read(group: zarr.Group, name: str, where: str) -> np.ndarray:
    """All values of one array of a sample's group."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise TerraMeshFormatError(f'{where}: "{name}" is not an array')
    try:
        return np.asarray(node[...])
    except Exception as exc:
        raise TerraMeshFormatError(f'{where}: cannot read "{name}" ({exc!r})') from exc


def _tar_samples(url: str) -> Iterator[dict[str, Any]]:
    """Samples (``__key__`` plus members) of one tar file, in stored order.

    Like ``webdataset.tariterators.group_by_keys`` (consecutive members with the
    same key form a sample), but a sample is handed on before a read error of
    the following header is raised, so a truncated shard yields every sample it
    holds in full and the error names the last good one.
    """
    stream = open_url(url)
    current: dict[str, Any] | None = None
    try:
        for member in tar_file_expander(
            [{'url': url, 'stream': stream}], eof_value=None
        ):
            key, suffix = base_plus_ext(member['fname'])
            if key is None:
                continue
            if current is not None and current['__key__'] != key:
                yield current
                current = None
            if current is None:
                current = {'__key__': key, '__url__': url}
            current[suffix] = member['data']
    except Exception:
        if current is not None:
            yield current
        raise
    finally:
        stream.close()
    if current is not None:
        yield current


class TerraMeshStream(IterableDataset[dict[str, Any]]):
    """Iterable dataset over shard groups in the TerraMesh layout.

    Each sample is ``{'image_<name>': Tensor (C, H, W), 'key': str, 'shard': str,
    'version_<name>': int}`` for every requested modality: values in the stored
    dtype and units (e.g. S-2 reflectance DN as ``int16``/``uint16``, S-1
    backscatter in dB as ``float``), bands in the order of the file's ``band``
    coordinate; ``version_<name>`` is the index of the folder used among the
    modality's alternatives (0 without alternatives).

    Sentinel-2 DN (``S2L1C``, ``S2L2A``) are harmonized to the pre-2022 scale
    (``s2_harmonize``, see :mod:`torchgeo_decur.transforms.harmonize`): under
    ``'auto'`` by each sample's ``time`` (>= 2022-01-25: offset removed); shards
    written by ``torchgeo-decur shards`` are already on that scale. With
    ``metadata`` samples also carry ``time_<name>`` (int64 ns since the epoch, 0
    for none), ``center_lat`` and ``center_lon`` (float64 degrees) and, for
    optical products that store one, ``cloud_mask_<name>`` (H, W); the default
    collate batches them to (N,) and (N, H, W). ``max_cloud_fraction`` drops
    samples whose cloud mask (non-zero pixels) covers more than that share in
    any optical modality.

    One epoch reads every shard group once: the group list is shuffled with
    ``seed + epoch`` (identically on every rank), ranks take every
    ``world_size``-th group and workers every ``num_workers``-th group of those
    (``webdataset.split_by_worker``), so no sample reaches two ranks or workers.
    The rank is read in the main process (from ``torch.distributed`` or the
    ``RANK``/``WORLD_SIZE`` variables) when the dataset is built and at every
    :meth:`set_epoch`. Samples are shuffled in a buffer of
    ``shuffle_buffer`` with a seed from (seed, epoch, rank, worker), so an epoch is
    reproducible given its number (:meth:`set_epoch`).

    With ``samples_per_worker`` every worker yields exactly that many samples
    (a nominal epoch): it cycles through its own groups, reshuffled each pass,
    so ranks stay in step under DDP even when shards differ in size. Within such
    an epoch a sample can repeat only on the rank that holds it, and only after
    all of that worker's groups have been read once.
    """

    def __init__(
        self,
        root: str,
        split: str = 'train',
        modalities: Sequence[str] = ('S1GRD|S1RTC', 'S2L1C'),
        names: Mapping[str, str] | None = None,
        shards: Sequence[str] | None = None,
        on_missing: Policy = 'error',
        on_error: Policy = 'error',
        channels: Mapping[str, int] | None = None,
        time_step: int | None = None,
        shuffle: bool = True,
        shuffle_buffer: int = 1000,
        seed: int = 0,
        samples_per_worker: int | None = None,
        max_consecutive_skips: int = MAX_CONSECUTIVE_SKIPS,
        s2_harmonize: S2Harmonize = 'auto',
        metadata: bool = False,
        max_cloud_fraction: float | None = None,
    ) -> None:
        """Initialize a new TerraMeshStream instance.

        Args:
            root: Dataset root (local path, ``file://`` or fsspec URL).
            split: Split folder (``'train'`` or ``'val'`` for TerraMesh).
            modalities: Modality folders; ``'A|B'`` takes whichever a shard has.
            names: Output name per entry of ``modalities`` (see
                :func:`parse_modalities`).
            shards: Shard file names to read (default: all found by listing).
            on_missing: A shard lacking a requested modality: ``'error'`` or
                ``'skip'`` the shard (warning names it).
            on_error: A truncated tar, misaligned samples or a malformed Zarr zip:
                ``'error'`` (naming shard and sample) or ``'skip'`` with a warning
                (the sample, or the rest of the shard when the tar is unreadable).
            channels: Expected band count per output name; defaults to the
                published counts for TerraMesh folders.
            time_step: Time index to keep from multi-temporal samples.
            shuffle: Shuffle shard groups and samples.
            shuffle_buffer: Samples in the shuffle buffer.
            seed: Base seed of the shuffles.
            samples_per_worker: Samples each worker yields per epoch (None: read
                every group once).
            max_consecutive_skips: With ``on_error='skip'``, samples skipped in a
                row after which the stream stops with an error naming the first
                reasons (a nominal epoch over data that never decodes would
                otherwise spin forever).
            s2_harmonize: Remove the 1000 DN offset of processing baseline
                04.00+ from Sentinel-2 DN: ``'auto'`` (by each sample's
                ``time``; warns once per folder for samples without one),
                ``'always'`` or ``'never'``.
            metadata: Add ``time_<name>``, ``center_lat``, ``center_lon`` and
                ``cloud_mask_<name>`` to every sample.
            max_cloud_fraction: Drop samples whose cloud mask covers more than
                this share, in [0, 1] (None: keep every sample).

        Raises:
            ValueError: If a policy, size or option is invalid.
        """
        if on_missing not in ('error', 'skip') or on_error not in ('error', 'skip'):
            raise ValueError(
                f"on_missing and on_error must be 'error' or 'skip', got "
                f'{on_missing!r} and {on_error!r}'
            )
        if shuffle_buffer < 1:
            raise ValueError(f'shuffle_buffer must be positive, got {shuffle_buffer}')
        if samples_per_worker is not None and samples_per_worker < 1:
            raise ValueError(
                f'samples_per_worker must be positive, got {samples_per_worker}'
            )
        if max_cloud_fraction is not None and not 0 <= max_cloud_fraction <= 1:
            raise ValueError(
                f'max_cloud_fraction must be in [0, 1], got {max_cloud_fraction}'
            )
        self.harmonizer = S2Harmonizer(check_s2_harmonize(s2_harmonize))
        self.metadata = metadata
        self.max_cloud_fraction = max_cloud_fraction
        self.root = root
        self.split = split
        self.specs = parse_modalities(modalities, names)
        self.on_error = on_error
        self.time_step = time_step
        self.shuffle = shuffle
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        if max_consecutive_skips < 1:
            raise ValueError(
                f'max_consecutive_skips must be positive, got {max_consecutive_skips}'
            )
        self.samples_per_worker = samples_per_worker
        self.max_consecutive_skips = max_consecutive_skips
        #: The first reasons for skipping in this worker's current pass.
        self.skip_reasons: list[str] = []
        self.epoch = 0
        self.node = self._node()
        self.channels: dict[str, int | None] = {}
        for spec in self.specs:
            known = {TERRAMESH_CHANNELS.get(v) for v in spec.versions}
            if channels is not None and spec.name in channels:
                self.channels[spec.name] = channels[spec.name]
            elif len(known) == 1:
                self.channels[spec.name] = known.pop()
            else:
                raise ValueError(
                    f'alternatives {spec.versions} have different band counts; '
                    f'pass channels={{{spec.name!r}: ...}}'
                )
        # Shards written by ``torchgeo-decur shards`` record their band counts.
        manifest = read_manifest(root, split)
        #: Shards written by ``torchgeo-decur shards`` from a reader that
        #: harmonized Sentinel-2 already (its mode is in the manifest).
        self.harmonized = (manifest or {}).get('s2_harmonize') is not None
        if manifest is not None:
            for spec in self.specs:
                if self.channels[spec.name] is None:
                    for version in spec.versions:
                        recorded = manifest.get('channels', {}).get(version)
                        if recorded is not None:
                            self.channels[spec.name] = int(recorded)
        self.groups = find_shard_groups(root, split, self.specs, shards, on_missing)

    @staticmethod
    def _node() -> tuple[int, int]:
        """(rank, world size) of this process: torch.distributed, else env vars."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        rank, world, _, _ = wds.utils.pytorch_worker_info()
        return rank, world

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffles the next iteration reproduces.

        Called in the main process before the DataLoader starts its workers; it
        also records the DDP rank, as the dataset may have been built before the
        process group started.

        Args:
            epoch: Epoch number.
        """
        self.epoch = epoch
        self.node = self._node()

    def _fail(self, message: str, exc: Exception | None = None) -> None:
        if self.on_error == 'error':
            raise TerraMeshFormatError(message) from exc
        if len(self.skip_reasons) < 3:
            self.skip_reasons.append(message)
        warnings.warn(f'skipping: {message}', stacklevel=3)

    def _where(self, groups: Sequence[ShardGroup]) -> str:
        """The split folder and shard names of ``groups``, for error messages."""
        names = [g.shard for g in groups]
        shown = names[:5] + ([f'... {len(names) - 5} more'] if len(names) > 5 else [])
        return f'{_join(self.root, self.split)} (shards {", ".join(shown)})'

    def _reasons(self) -> str:
        if not self.skip_reasons:
            return ''
        return '; first skipped: ' + ' | '.join(self.skip_reasons)

    def _group_samples(self, group: ShardGroup) -> Iterator[dict[str, Any]]:
        """Raw aligned samples of one shard group (bytes, not decoded)."""
        names = list(group.urls)
        iters = [_tar_samples(group.urls[n]) for n in names]
        last = '(start of shard)'
        position = 0
        while True:
            parts = []
            for name, it in zip(names, iters, strict=True):
                try:
                    parts.append(next(it, None))
                except Exception as exc:
                    self._fail(
                        f'{group.urls[name]}: unreadable after sample {last} ({exc!r})',
                        exc,
                    )
                    return
            if all(p is None for p in parts):
                return
            keys = [None if p is None else p['__key__'] for p in parts]
            if len(set(keys)) != 1:
                listing = ', '.join(
                    f'{group.urls[n]}: {k if k is not None else "(ended)"}'
                    for n, k in zip(names, keys, strict=True)
                )
                self._fail(
                    f'shard {group.shard}: modalities disagree at sample #{position} '
                    f'after {last} ({listing}); modality files are truncated or '
                    'not aligned'
                )
                return
            key = str(keys[0])
            sample: dict[str, Any] = {'key': key, 'shard': group.shard}
            for name, part in zip(names, parts, strict=True):
                assert part is not None
                if SAMPLE_EXTENSION not in part:
                    others = sorted(k for k in part if not k.startswith('__'))
                    self._fail(
                        f'{group.urls[name]}: sample {key} has no .{SAMPLE_EXTENSION} '
                        f'member (has {others})'
                    )
                    sample = {}
                    break
                sample[name] = part[SAMPLE_EXTENSION]
            last = key
            position += 1
            if sample:
                sample['_group'] = group
                yield sample

    def decode(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """Decode the Zarr zips of one raw sample.

        Args:
            raw: Sample of undecoded bytes from the shard reader.

        Returns:
            The sample with ``image_<name>`` tensors, or None when skipped.
        """
        group: ShardGroup = raw['_group']
        out: dict[str, Any] = {'key': raw['key'], 'shard': raw['shard']}
        masks = self.metadata or self.max_cloud_fraction is not None
        for spec in self.specs:
            folder = spec.versions[group.versions[spec.name]]
            where = f'{group.urls[spec.name]} sample {raw["key"]} (modality {folder})'
            try:
                decoded = read_zarr_zip(
                    raw[spec.name], where, self.time_step, cloud_mask=masks
                )
                check_sample_values(decoded.bands, where)
                expected = self.channels[spec.name]
                if expected is not None and decoded.bands.shape[0] != expected:
                    names = decoded.band_names or []
                    raise TerraMeshFormatError(
                        f'{where}: {decoded.bands.shape[0]} bands {names}, expected '
                        f'{expected}'
                    )
            except TerraMeshFormatError as exc:
                self._fail(str(exc), exc)
                return None
            ns = 0 if decoded.time is None else int(decoded.time.reshape(-1)[0])
            image = torch.from_numpy(decoded.bands)
            if folder in S2_DN_FOLDERS and not (
                self.harmonized and self.harmonizer.mode == 'auto'
            ):
                image = self.harmonizer(
                    image,
                    f'{folder} samples under {self.root}/{self.split}',
                    when=date_from_ns(ns),
                )
            out[f'image_{spec.name}'] = image
            out[f'version_{spec.name}'] = group.versions[spec.name]
            if decoded.cloud_mask is not None:
                cloud = torch.from_numpy(decoded.cloud_mask)
                if self.max_cloud_fraction is not None and (
                    float((cloud != 0).float().mean()) > self.max_cloud_fraction
                ):
                    return None
                if self.metadata:
                    out[f'cloud_mask_{spec.name}'] = cloud
            if self.metadata:
                out[f'time_{spec.name}'] = torch.tensor(ns, dtype=torch.int64)
                for k in ('center_lat', 'center_lon'):
                    value = getattr(decoded, k)
                    if k not in out and value is not None:
                        out[k] = torch.tensor(value, dtype=torch.float64)
        return out

    def _worker_groups(self) -> tuple[list[ShardGroup], random.Random, str]:
        groups = list(self.groups)
        if self.shuffle:
            random.Random(f'{self.seed}-{self.epoch}').shuffle(groups)
        # The rank comes from the main process (see _node): DataLoader workers
        # started with 'spawn' or 'forkserver' have no process group, and
        # webdataset's own split_by_node would then hand every rank all shards.
        rank, world = self.node
        mine = list(wds.split_by_worker(islice(groups, rank, None, world)))
        _, _, worker, workers = wds.utils.pytorch_worker_info()
        rng = random.Random(f'{self.seed}-{self.epoch}-{rank}-{worker}')
        return mine, rng, f'rank {rank}/{world}, worker {worker}/{workers}'

    def _one_pass(
        self, groups: list[ShardGroup], rng: random.Random
    ) -> Iterator[dict[str, Any]]:
        """Raw samples of one pass over ``groups``, shuffled within the pass."""
        order = list(groups)
        if self.shuffle:
            rng.shuffle(order)
        raw: Iterator[dict[str, Any]] = (
            sample for group in order for sample in self._group_samples(group)
        )
        if self.shuffle and self.shuffle_buffer > 1:
            # webdataset's buffer shuffle; fed one pass at a time so that a
            # nominal epoch never mixes a sample's repeat in before the pass ends.
            raw = wds.filters._shuffle(
                raw, bufsize=self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng
            )
        return raw

    def _raw_stream(
        self, groups: list[ShardGroup], rng: random.Random, who: str
    ) -> Iterator[dict[str, Any]]:
        if self.samples_per_worker is None:
            yield from self._one_pass(groups, rng)
            return
        if not groups:
            raise ValueError(
                f'{who} has no shard to read: {len(self.groups)} shard group(s) for '
                'all ranks and workers; use fewer workers or more shards'
            )
        while True:
            produced = False
            for sample in self._one_pass(groups, rng):
                produced = True
                yield sample
            if not produced:
                raise TerraMeshFormatError(
                    f'{who}: no readable sample in {self._where(groups)}'
                    + self._reasons()
                )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield decoded samples of this rank's and worker's share of the epoch.

        Yields:
            Sample dictionaries (see the class docstring).
        """
        groups, rng, who = self._worker_groups()
        self.skip_reasons = []
        raw = self._raw_stream(groups, rng, who)
        decoded = islice(self._decoded(raw, groups, who), self.samples_per_worker)
        yielded = False
        for sample in decoded:
            yielded = True
            yield sample
        if groups and not yielded:
            raise TerraMeshFormatError(
                f'{who}: no sample found in {self._where(groups)}: the shards are '
                'empty or every sample was skipped' + self._reasons()
            )

    def _decoded(
        self, raw: Iterator[dict[str, Any]], groups: list[ShardGroup], who: str
    ) -> Iterator[dict[str, Any]]:
        """Decoded samples; stops after too many skips in a row."""
        in_a_row = 0
        for item in raw:
            sample = self.decode(item)
            if sample is not None:
                in_a_row = 0
                yield sample
                continue
            in_a_row += 1
            if in_a_row >= self.max_consecutive_skips:
                raise TerraMeshFormatError(
                    f'{who}: {in_a_row} samples in a row skipped in '
                    f'{self._where(groups)}; stopping (check the data and settings '
                    'such as channels or max_cloud_fraction)' + self._reasons()
                )


def read_manifest(root: str, split: str) -> dict[str, Any] | None:
    """The ``shards.json`` written by :func:`~torchgeo_decur.datasets.shards.write_shards`.

    Args:
        root: Shard root.
        split: Split folder.

    Returns:
        The manifest, or None when the split has none (e.g. TerraMesh itself).

    Raises:
        TerraMeshFormatError: If the file is not a JSON object, naming it.
    """
    url = _join(root, split, 'shards.json')
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        return None
    with fs.open(path, 'rb') as f:
        data = f.read()
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TerraMeshFormatError(
            f'{url}: damaged manifest, not valid JSON ({err}); restore it or remove '
            'it (rerun torchgeo-decur shards to rewrite it)'
        ) from None
    if not isinstance(manifest, dict):
        raise TerraMeshFormatError(
            f'{url}: damaged manifest, a JSON {type(manifest).__name__} instead of '
            'an object'
        )
    return manifest
