"""The patches of an embedding run: a grid over own rasters, chip folders or shards.

:class:`EmbeddingDataModule` serves Lightning's ``predict`` loop with batches::

    {'image_<modality>': (N, C_m, H, W) raw values, 'patch_id': (N,) int64,
     'bounds': (N, 4) float64 minx, miny, maxx, maxy}

* **rasters**: one torchgeo :class:`~torchgeo.datasets.RasterDataset` per
  modality, put on one grid and intersected exactly as
  :class:`~torchgeo_decur.datamodules.MultimodalGeoDataModule` does, cut into
  ``patch_size`` windows every ``stride`` pixels by torchgeo's
  :class:`~torchgeo.samplers.GriddedPatchSampler` (one regular grid over the
  common ground, snapped to its pixels, windows that touch it); ``bounds`` are the
  window's in the grid's CRS.
* **chips**: :class:`~torchgeo_decur.datasets.PairedChips` folders, one patch
  per key; ``bounds`` are the first modality's chip footprint, in the CRS of the
  first chip (NaN for chips without georeference).
* **shards**: TerraMesh-layout WebDataset shards (what ``torchgeo-decur shards``
  writes), one folder of ``.tar`` files per modality, read by
  :class:`~torchgeo_decur.datasets.TerraMeshStream`'s decoder (its checks and
  Sentinel-2 harmonization) with random access through an index of the tar
  members; one patch per sample, named by shard file and sample key. Batches
  also hold ``crs`` (N,) strings, the CRS of each sample's ``bounds``: for
  samples with pixel-centre ``x``/``y`` coordinates and a readable CRS (as
  xarray/rioxarray store them) ``bounds`` is the footprint (the pixel centres
  +- half a pixel) in that CRS (``EPSG:<code>`` where it has one, else WKT);
  otherwise the centre (``center_lon``, ``center_lat``) as a point in
  EPSG:4326 (minx == maxx, miny == maxy); NaN and ``''`` for samples with
  neither (see :func:`shard_footprint`).

Patch ids number the windows (chips, shard samples) in a fixed order, so a resumed run and every
rank agree on them. Patches already written by an
:class:`~torchgeo_decur.callbacks.EmbeddingWriter` of the trainer are left out of
the loader, so an interrupted run resumes where it stopped.
"""

import functools
import importlib
import os
import tarfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import rasterio
import shapely
import torch
from lightning.pytorch import LightningDataModule
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio.warp import transform_bounds
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchgeo.datasets import RasterDataset
from torchgeo.samplers import GriddedPatchSampler

from ..datasets.chips import PairedChips
from ..datasets.terramesh import (
    SAMPLE_EXTENSION,
    Policy,
    ShardGroup,
    TerraMeshFormatError,
    TerraMeshStream,
    ZarrGeoreference,
    list_tar_files,
    open_url,
    read_zarr_georeference,
)
from ..transforms.harmonize import S2Harmonize, check_s2_harmonize
from .geo import (
    CoRegisteredPatches,
    MultimodalGeoDataModule,
    check_raster_files,
    describe,
    indexed_files,
)
from .utils import read_data_section

#: A window: minx, maxx, miny, maxy in CRS units.
Window = tuple[float, float, float, float]

#: CRS of the centre points of shard samples, and of the geometry column of a
#: shard run's GeoParquet file (footprints are reprojected to it).
SHARD_CRS = 'EPSG:4326'


@functools.lru_cache(maxsize=64)
def shard_crs(text: str) -> str | None:
    """A stored CRS as ``EPSG:<code>`` where it has a code, else as WKT.

    Args:
        text: The CRS as stored (WKT or any pyproj input).

    Returns:
        The CRS, or None (with a warning, once per text) if pyproj cannot read it.
    """
    try:
        crs = CRS.from_user_input(text)
    except CRSError as err:
        warnings.warn(
            f'shard samples with the CRS {text!r} get their centre point as '
            f'geometry: pyproj cannot read it ({err})',
            stacklevel=2,
        )
        return None
    code = crs.to_epsg()
    return f'EPSG:{code}' if code is not None else crs.to_wkt()


def pixel_footprint(x: np.ndarray, y: np.ndarray) -> list[float] | None:
    """Bounds of a grid given by its pixel-centre coordinates.

    Args:
        x: (W,) pixel-centre x coordinates.
        y: (H,) pixel-centre y coordinates (either direction).

    Returns:
        minx, miny, maxx, maxy: the outer pixel centres +- half a pixel, or None
        for fewer than two pixels along an axis (no pixel size) or non-finite
        coordinates.
    """
    if x.size < 2 or y.size < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    dx, dy = abs(float(x[1] - x[0])), abs(float(y[1] - y[0]))
    if dx == 0 or dy == 0:
        return None
    return [
        float(x.min()) - dx / 2,
        float(y.min()) - dy / 2,
        float(x.max()) + dx / 2,
        float(y.max()) + dy / 2,
    ]


def shard_footprint(
    georeference: ZarrGeoreference | None,
    center_lon: float | None,
    center_lat: float | None,
) -> tuple[list[float], str]:
    """What a shard run records of where a sample lies.

    Args:
        georeference: The sample's pixel-centre coordinates and CRS, if stored.
        center_lon: Longitude of its centre (degrees), if stored.
        center_lat: Latitude of its centre (degrees), if stored.

    Returns:
        ``(bounds, crs)``: the footprint (minx, miny, maxx, maxy) and its CRS
        where the coordinates and a readable CRS are there; else the centre as a
        point (minx == maxx, miny == maxy) in :data:`SHARD_CRS`; else NaN bounds
        and ``''``.
    """
    if georeference is not None:
        crs = shard_crs(georeference.crs)
        bounds = pixel_footprint(georeference.x, georeference.y)
        if crs is not None and bounds is not None:
            return bounds, crs
    if center_lon is not None and center_lat is not None:
        return [center_lon, center_lat] * 2, SHARD_CRS
    return [float('nan')] * 4, ''


class RasterWindows(Dataset[dict[str, Tensor]]):
    """Read every modality at fixed windows of a common grid."""

    def __init__(self, reader: CoRegisteredPatches, windows: Sequence[Window]) -> None:
        """Initialize a new RasterWindows instance.

        Args:
            reader: Reads all modalities at a location (no redraws are used).
            windows: ``(minx, maxx, miny, maxy)`` per patch, in the grid's CRS.
        """
        self.reader = reader
        self.windows = list(windows)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Patch ``index`` in raw units, with its id and bounds."""
        x0, x1, y0, y1 = self.windows[index]
        sample = self.reader.read(slice(x0, x1), slice(y0, y1))
        del sample['bounds']
        sample['patch_id'] = torch.tensor(index)
        sample['bounds'] = torch.tensor([x0, y0, x1, y1], dtype=torch.float64)
        return sample

    def __len__(self) -> int:
        """Number of windows."""
        return len(self.windows)


class ChipPatches(Dataset[dict[str, Tensor]]):
    """The chips of a :class:`PairedChips` with ids and footprints."""

    def __init__(self, chips: PairedChips, bounds: Sequence[Sequence[float]]) -> None:
        """Initialize a new ChipPatches instance.

        Args:
            chips: The paired chips.
            bounds: minx, miny, maxx, maxy per key (NaN where not georeferenced).
        """
        self.chips = chips
        self.bounds = [list(b) for b in bounds]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Chip ``index`` in raw units, with its id and bounds."""
        sample = self.chips[index]
        sample['patch_id'] = torch.tensor(index)
        sample['bounds'] = torch.tensor(self.bounds[index], dtype=torch.float64)
        return sample

    def __len__(self) -> int:
        """Number of chips."""
        return len(self.chips)


@dataclass(frozen=True)
class ShardMember:
    """Where one sample of a shard group sits in the tar file of each modality.

    Attributes:
        group: The shard group (one tar file per modality).
        key: The sample key (member name without ``.zarr.zip``).
        spans: Modality output name -> (byte offset, size) of the member.
    """

    group: ShardGroup
    key: str
    spans: dict[str, tuple[int, int]]


def _tar_members(url: str) -> list[tuple[str, int, int]]:
    """``(sample key, offset, size)`` of the sample members of one tar file."""
    if url.startswith('pipe:'):
        raise ValueError(
            f'{url}: embedding reads shards at random positions; give a file or '
            'fsspec URL, not a pipe: command'
        )
    out = []
    suffix = '.' + SAMPLE_EXTENSION
    try:
        with open_url(url) as f, tarfile.open(fileobj=f, mode='r:') as tar:
            for info in tar:
                if info.isfile() and info.name.endswith(suffix):
                    key = info.name[: -len(suffix)]
                    out.append((key, int(info.offset_data), int(info.size)))
    except (tarfile.TarError, EOFError) as err:
        raise TerraMeshFormatError(f'{url}: not a readable tar file ({err})') from None
    return out


def index_shards(stream: TerraMeshStream) -> list[ShardMember]:
    """Every sample of the stream's shard groups, in shard and stored order.

    Args:
        stream: The shards (its ``groups``, one tar file per modality each).

    Returns:
        One entry per sample.

    Raises:
        TerraMeshFormatError: If a tar file cannot be read, or the modalities of
            a shard do not hold the same samples in the same order (naming the
            shard and the first sample where they differ).
    """
    index = []
    for group in stream.groups:
        members = {name: _tar_members(url) for name, url in group.urls.items()}
        keys = {name: [m[0] for m in found] for name, found in members.items()}
        first, *others = keys
        for name in others:
            if keys[name] != keys[first]:
                at = next(
                    (
                        i
                        for i, (a, b) in enumerate(
                            zip(keys[first], keys[name], strict=False)
                        )
                        if a != b
                    ),
                    min(len(keys[first]), len(keys[name])),
                )
                raise TerraMeshFormatError(
                    f'shard {group.shard}: modalities {first!r} ({group.urls[first]}) '
                    f'and {name!r} ({group.urls[name]}) disagree at sample #{at} '
                    f'({len(keys[first])} and {len(keys[name])} samples); the files '
                    'are truncated or not aligned'
                )
        for i, key in enumerate(keys[first]):
            spans = {name: found[i][1:] for name, found in members.items()}
            index.append(ShardMember(group, key, spans))
    return index


class ShardPatches(Dataset[dict[str, Any]]):
    """The samples of shards with ids and footprints (random access)."""

    def __init__(self, stream: TerraMeshStream, index: Sequence[ShardMember]) -> None:
        """Initialize a new ShardPatches instance.

        Args:
            stream: Decodes the samples (built with ``metadata=True``).
            index: The samples, see :func:`index_shards`.
        """
        self.stream = stream
        self.index = list(index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample ``index`` in raw units, with its id, ``bounds`` and ``crs``.

        The footprint is that of the first modality (in the order given) whose
        member stores pixel-centre coordinates and a CRS.
        """
        member = self.index[index]
        raw: dict[str, Any] = {
            'key': member.key,
            'shard': member.group.shard,
            '_group': member.group,
        }
        for name, (offset, size) in member.spans.items():
            with open_url(member.group.urls[name]) as f:
                f.seek(offset)
                raw[name] = f.read(size)
        decoded = self.stream.decode(raw)
        assert decoded is not None  # the stream raises (on_error='error')
        sample = {k: v for k, v in decoded.items() if k.startswith('image_')}
        sample['patch_id'] = torch.tensor(index)
        georeference = None
        for name in member.spans:
            where = f'{member.group.urls[name]} sample {member.key}'
            georeference = read_zarr_georeference(raw[name], where)
            if georeference is not None:
                break
        lon, lat = decoded.get('center_lon'), decoded.get('center_lat')
        bounds, crs = shard_footprint(
            georeference,
            None if lon is None else float(lon),
            None if lat is None else float(lat),
        )
        sample['bounds'] = torch.tensor(bounds, dtype=torch.float64)
        sample['crs'] = crs
        return sample

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.index)


def shard_stream(
    shards: dict[str, str],
    on_missing: Policy = 'error',
    s2_harmonize: S2Harmonize = 'auto',
) -> TerraMeshStream:
    """A TerraMesh stream (no shuffling) over modality folders of one split.

    Args:
        shards: Output modality name -> its folder of ``.tar`` shards, e.g.
            ``{'s1': 'root/train/S1GRD|S1RTC', 's2': 'root/train/S2L1C'}``
            (``A|B``: whichever of the folders A and B a shard has).
        on_missing: A shard lacking a modality: ``'error'`` or ``'skip'`` it.
        s2_harmonize: Removal of the Sentinel-2 processing baseline 04.00 offset
            (see :class:`~torchgeo_decur.datasets.TerraMeshStream`).

    Returns:
        The stream; its ``groups`` pair the shards of all modalities.

    Raises:
        ValueError: If the folders are not in one split folder.
        MissingModalityError: If a shard lacks a modality and ``on_missing``
            is ``'error'``.
    """
    parents = {m: f.rstrip('/').rpartition('/')[0] for m, f in shards.items()}
    if len(set(parents.values())) != 1:
        raise ValueError(
            f'shard folders {shards} are not in one split folder (one folder per '
            'modality side by side, as torchgeo-decur shards writes them)'
        )
    root, _, split = next(iter(parents.values())).rpartition('/')
    if not split:
        raise ValueError(
            f'shard folders {shards}: give each modality folder with its split '
            "folder, e.g. 'root/train/S2L1C'"
        )
    folders = {m: f.rstrip('/').rsplit('/', 1)[-1] for m, f in shards.items()}
    return TerraMeshStream(
        root or '.',
        split,
        modalities=list(folders.values()),
        names={f: m for m, f in folders.items()},
        on_missing=on_missing,
        shuffle=False,
        metadata=True,
        s2_harmonize=s2_harmonize,
    )


def skipped_shards(shards: dict[str, str], stream: TerraMeshStream) -> list[str]:
    """Shard files of the folders that ``stream`` leaves out (lacking a modality).

    Args:
        shards: The modality folders given to :func:`shard_stream`.
        stream: The stream built from them.

    Returns:
        Sorted shard file names.
    """
    found: set[str] = set()
    for folder in shards.values():
        parent, _, last = folder.rstrip('/').rpartition('/')
        for version in last.split('|'):
            try:
                found |= set(list_tar_files(f'{parent}/{version}'))
            except FileNotFoundError:
                continue
    return sorted(found - {g.shard for g in stream.groups})


#: Data modules whose ``torchgeo fit`` data section :func:`fit_config_data` reads.
FIT_DATA_MODULES = (
    'MultimodalGeoDataModule',
    'PairedChipsDataModule',
    'TerraMeshDataModule',
)

#: PairedChipsDataModule arguments that say how the chips are read (besides
#: ``on_invalid`` and ``s2_harmonize``, which every kind of data takes).
_CHIP_OPTIONS = ('pattern', 'bands', 'extensions')


def _instantiate(spec: Any, where: str) -> Any:
    """An object from a jsonargparse ``{'class_path', 'init_args'}`` entry."""
    if not isinstance(spec, dict) or not isinstance(spec.get('class_path'), str):
        raise ValueError(f'{where} is not a class_path / init_args entry: {spec!r}')
    module, _, name = spec['class_path'].rpartition('.')
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f'{where}: cannot import {spec["class_path"]!r} ({err})'
        ) from None
    return cls(**dict(spec.get('init_args') or {}))


def fit_config_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The data of a ``torchgeo fit`` config as :class:`EmbeddingDataModule` arguments.

    Reads the ``data`` section of configs of
    :class:`~torchgeo_decur.datamodules.MultimodalGeoDataModule` (its
    ``datasets``, ``crs`` and ``res``: own rasters),
    :class:`~torchgeo_decur.datamodules.PairedChipsDataModule` (``folders`` and
    how the chips are read: ``pattern``, ``bands``, ...) and
    :class:`~torchgeo_decur.datamodules.TerraMeshDataModule` (``root``,
    ``split``, ``modalities``, ``names``: shards), so the data pretrained on
    are embedded without restating them. Relative paths are taken from the
    working directory, as ``torchgeo fit`` does.

    Args:
        path: The YAML file.

    Returns:
        ``datasets`` (with ``crs``, ``res``), ``chips`` (with ``chip_options``)
        or ``shards`` (with ``on_missing``), and the config's ``on_invalid``
        (not for shards) and ``s2_harmonize`` (None where it does not set them).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not YAML, has no data section, or its data module is
            not one of :data:`FIT_DATA_MODULES` (naming it).
    """
    from ..datasets.terramesh import parse_modalities

    where = os.fspath(path)
    data = read_data_section(where)
    kind = data['class_path'].rpartition('.')[2]
    args = dict(data.get('init_args') or {})
    policies = {k: args.get(k) for k in ('on_invalid', 's2_harmonize')}
    if kind == 'MultimodalGeoDataModule':
        datasets = {
            m: _instantiate(spec, f'{where}: data.init_args.datasets.{m}')
            for m, spec in dict(args.get('datasets') or {}).items()
        }
        if not datasets:
            raise ValueError(f'config {where!r}: data.init_args has no datasets')
        return {
            'datasets': datasets,
            'crs': args.get('crs'),
            'res': args.get('res'),
        } | policies
    if kind == 'PairedChipsDataModule':
        folders = args.get('folders')
        if not isinstance(folders, dict) or not folders:
            raise ValueError(f'config {where!r}: data.init_args has no folders')
        options = {k: args[k] for k in _CHIP_OPTIONS if args.get(k) is not None}
        return {'chips': dict(folders), 'chip_options': options} | policies
    if kind == 'TerraMeshDataModule':
        root = str(args.get('root', 'data')).rstrip('/')
        split = str(args.get('split', 'train'))
        entries = list(args.get('modalities') or ('S1GRD|S1RTC', 'S2L1C'))
        specs = parse_modalities(entries, args.get('names'))
        return {
            'shards': {
                spec.name: f'{root}/{split}/{entry}'
                for spec, entry in zip(specs, entries, strict=True)
            },
            'on_missing': args.get('on_missing', 'error'),
            's2_harmonize': policies['s2_harmonize'],
        }
    raise ValueError(
        f'config {where!r} trains on {data["class_path"]}; embed reads the data of '
        f'{", ".join(FIT_DATA_MODULES)} configs (give --raster, --chips or --shards '
        'otherwise)'
    )


def chip_footprints(chips: PairedChips) -> tuple[list[list[float]], str | None]:
    """Footprints of the first modality's chips in the CRS of the first chip.

    Args:
        chips: The paired chips.

    Returns:
        ``(bounds per key, CRS as WKT or None)``; chips without georeference get
        NaN bounds, chips in another CRS are transformed to the first one's.
    """
    first = chips.modalities[0]
    crs: CRS | None = None
    out = []
    for key in chips.keys:
        path = chips.files[first][key]
        with rasterio.open(path) as src:
            if src.crs is None or src.transform.is_identity:
                out.append([float('nan')] * 4)
                continue
            left, bottom, right, top = src.bounds
            here = CRS.from_user_input(src.crs.to_wkt())
            crs = crs or here
            if here != crs:
                left, bottom, right, top = transform_bounds(
                    src.crs, crs.to_wkt(), left, bottom, right, top
                )
            out.append([left, bottom, right, top])
    return out, None if crs is None else crs.to_wkt()


def _path_list(paths: Any) -> list[str]:
    """A dataset's ``paths`` (one path or several) as a list of strings."""
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


class EmbeddingDataModule(LightningDataModule):
    """Patches of own rasters (a grid with a stride), chip folders or shards.

    Give exactly one of ``datasets`` (rasters), ``chips`` and ``shards`` (folders).
    """

    def __init__(
        self,
        datasets: dict[str, RasterDataset] | None = None,
        chips: dict[str, str] | None = None,
        patch_size: int = 64,
        stride: int | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        crs: str | None = None,
        res: float | None = None,
        shards: dict[str, str] | None = None,
        chip_options: dict[str, Any] | None = None,
        on_missing: Policy = 'error',
        on_invalid: Literal['error', 'skip'] = 'error',
        s2_harmonize: S2Harmonize = 'auto',
        progress: bool = True,
    ) -> None:
        """Initialize a new EmbeddingDataModule instance.

        Args:
            datasets: Modality → torchgeo RasterDataset, modality 1 first.
            chips: Modality → folder of chips (see :class:`PairedChips`).
            patch_size: Window side in pixels of the common grid (rasters).
            stride: Pixels between window corners (default: ``patch_size``).
            batch_size: Patches per batch (per device).
            num_workers: Data loading worker processes.
            crs: CRS of the common grid (default: the first dataset's).
            res: Resolution of the common grid in CRS units per pixel.
            shards: Modality -> folder of TerraMesh-layout ``.tar`` shards, the
                folders side by side in one split folder (see
                :func:`shard_stream`).
            chip_options: Further arguments of :class:`PairedChips` (``pattern``,
                ``bands``, ``extensions``), as the chips were read for pretraining.
            on_missing: A shard lacking one of the modalities: ``'error'`` or
                ``'skip'`` it (named in :attr:`skipped_shards` and the settings).
            on_invalid: Invalid chips (unreadable, unpaired, of another size or
                band count) and raster files that cannot be opened: ``'error'``
                raises naming them, ``'skip'`` leaves them out with a warning
                (named in :attr:`skipped` and the settings). Not for shards.
            s2_harmonize: Remove the 1000 DN offset of Sentinel-2 processing
                baseline 04.00+ from Sentinel-2 modalities (``s2...`` names,
                torchgeo ``Sentinel2`` datasets, ``S2L1C``/``S2L2A`` shards):
                ``'auto'`` (decided per product; see
                :mod:`torchgeo_decur.transforms.harmonize`), ``'always'`` or
                ``'never'``.
            progress: Show a progress bar while the chips are checked.

        Raises:
            ValueError: For not exactly one of ``datasets``, ``chips`` and
                ``shards``, sizes below 1, an unknown ``on_missing``,
                ``on_invalid`` or ``s2_harmonize``, ``on_invalid`` or
                ``s2_harmonize`` also in ``chip_options``, or
                ``on_invalid='skip'`` for shards.
        """
        super().__init__()
        if sum(x is not None for x in (datasets, chips, shards)) != 1:
            raise ValueError('give exactly one of datasets (rasters), chips and shards')
        stride = patch_size if stride is None else stride
        if min(patch_size, stride, batch_size) < 1 or num_workers < 0:
            raise ValueError(
                'patch_size, stride and batch_size must be >= 1, got '
                f'{patch_size}, {stride}, {batch_size}'
            )
        self.datasets = dict(datasets) if datasets is not None else None
        self.chips = dict(chips) if chips is not None else None
        self.shards = dict(shards) if shards is not None else None
        self.chip_options = dict(chip_options or {})
        if on_missing not in ('error', 'skip'):
            raise ValueError(
                f"on_missing must be 'error' or 'skip', got {on_missing!r}"
            )
        self.on_missing: Policy = on_missing
        if on_invalid not in ('error', 'skip'):
            raise ValueError(
                f"on_invalid must be 'error' or 'skip', got {on_invalid!r}"
            )
        if on_invalid == 'skip' and shards is not None:
            raise ValueError(
                'on_invalid applies to chips and rasters; shards take on_missing'
            )
        twice = sorted({'on_invalid', 's2_harmonize'} & set(self.chip_options))
        if twice:
            raise ValueError(
                f'give {twice} as arguments of their own, not in chip_options'
            )
        self.on_invalid: Literal['error', 'skip'] = on_invalid
        check_s2_harmonize(s2_harmonize)
        self.s2_harmonize: S2Harmonize = s2_harmonize
        self.progress = progress
        #: Chip keys or raster files left out as invalid (``on_invalid='skip'``),
        #: with the reason.
        self.skipped: dict[str, str] = {}
        #: Shards left out for lacking a modality (``on_missing='skip'``).
        self.skipped_shards: list[str] = []
        self.patch_size = patch_size
        self.stride = stride
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.crs = crs
        self.res = res
        self.dataset: RasterWindows | ChipPatches | ShardPatches | None = None
        #: Bands per modality, known after :meth:`setup`.
        self.channels: dict[str, int] = {}
        #: CRS of the bounds (WKT), resolution and names, known after setup.
        self.grid: dict[str, Any] = {}
        #: Names of the patch ids: chip keys, or ``shard`` and ``key`` lists.
        self.labels: list[str] | dict[str, list[str]] | None = None

    def setup(self, stage: str) -> None:
        """Cut the rasters into windows or list the chips.

        Args:
            stage: Lightning stage (only 'predict' is meaningful).

        Raises:
            ValueError: For rasters that do not overlap, a window larger than the
                common ground, chip folders without pairs, or shards without
                samples or lacking a modality.
        """
        if self.dataset is not None:
            return
        if self.datasets is not None:
            self._setup_rasters(self.datasets)
        elif self.shards is not None:
            self._setup_shards(self.shards)
        else:
            assert self.chips is not None
            # Every chip is opened up front (its footprint is read anyway), so an
            # invalid one is named before the run, not in the middle of it.
            chips = PairedChips(
                self.chips,
                on_invalid=self.on_invalid,
                check_files=True,
                s2_harmonize=self.s2_harmonize,
                progress=self.progress,
                **self.chip_options,
            )
            self.skipped = dict(chips.skipped)
            bounds, crs = chip_footprints(chips)
            self.dataset = ChipPatches(chips, bounds)
            self.channels = chips.channels
            self.labels = list(chips.keys)
            self.grid = {'crs': crs, 'kind': 'chips'}

    def _setup_shards(self, shards: dict[str, str]) -> None:
        stream = shard_stream(shards, self.on_missing, self.s2_harmonize)
        self.skipped_shards = skipped_shards(shards, stream)
        index = index_shards(stream)
        if not index:
            raise ValueError(f'the shards {shards} hold no samples')
        self.dataset = ShardPatches(stream, index)
        first = self.dataset[0]
        self.channels = {m: int(first[f'image_{m}'].shape[0]) for m in shards}
        self.labels = {
            'shard': [s.group.shard for s in index],
            'key': [s.key for s in index],
        }
        self.grid = {
            'kind': 'shards',
            'crs': SHARD_CRS,
            'on_missing': self.on_missing,
            'skipped_shards': self.skipped_shards,
        }

    def _setup_rasters(self, datasets: dict[str, RasterDataset]) -> None:
        # The intersection of MultimodalGeoDataModule: one grid, and an error
        # naming the modality that does not overlap the others.
        layout = MultimodalGeoDataModule(
            datasets,
            patch_size=self.patch_size,
            crs=self.crs,
            res=self.res,
            on_invalid=self.on_invalid,
            s2_harmonize=self.s2_harmonize,
        )
        for m, ds in datasets.items():
            check_raster_files(m, ds, self.on_invalid)
            left_out = sorted(set(ds.files) - set(indexed_files(ds)))
            self.skipped |= dict.fromkeys(left_out, f'modality {m!r}: not readable')
        joint = layout.build_intersection()
        sampler = GriddedPatchSampler(joint, size=self.patch_size, stride=self.stride)
        windows = [(x.start, x.stop, y.start, y.stop) for x, y in sampler]
        if not windows:
            xmin, ymin, xmax, ymax = joint.index.geometry.union_all().bounds
            raise ValueError(
                f'patch_size={self.patch_size} px does not fit the common ground of '
                f'{", ".join(describe(d) for d in datasets.values())}: it is '
                f'{(xmax - xmin) / joint.res[0]:.0f} x {(ymax - ymin) / joint.res[1]:.0f}'
                ' px; use a smaller patch_size or a coarser res'
            )
        nodata = dict.fromkeys(datasets)
        reader = CoRegisteredPatches(
            datasets,
            shapely.Point(0, 0),
            self.patch_size,
            joint.res,
            0.0,
            nodata,
            offset_files=layout.s2_offset_files(),
        )
        self.dataset = RasterWindows(reader, windows)
        first = reader.read(*[slice(a, b) for a, b in (windows[0][:2], windows[0][2:])])
        self.channels = {m: int(first[f'image_{m}'].shape[0]) for m in datasets}
        self.grid = {
            'kind': 'rasters',
            'crs': CRS.from_user_input(joint.crs).to_wkt(),
            'res': [float(joint.res[0]), float(joint.res[1])],
            'patch_size': self.patch_size,
            'stride': self.stride,
            'bounds': list(joint.index.geometry.union_all().bounds),
        }

    def describe(self) -> str:
        """The data, in words, for messages."""
        if self.datasets is not None:
            return ', '.join(f'{m}: {describe(d)}' for m, d in self.datasets.items())
        if self.shards is not None:
            return f'shards {self.shards}'
        return f'chips {self.chips}'

    def embedding_settings(self) -> dict[str, Any]:
        """What determines the patches, recorded in and checked against outputs."""
        inputs = (
            {m: _path_list(d.paths) for m, d in self.datasets.items()}
            if self.datasets is not None
            else dict(self.chips or self.shards or {})
        )
        settings: dict[str, Any] = {
            'inputs': inputs,
            'patches': len(self.dataset or []),
            's2_harmonize': self.s2_harmonize,
        }
        if self.shards is None:
            settings |= {'on_invalid': self.on_invalid, 'skipped': self.skipped}
        if self.chip_options:
            settings['chip_options'] = self.chip_options
        return settings | self.grid

    def finished(self) -> set[int]:
        """Ids an EmbeddingWriter of the trainer has already written."""
        trainer = getattr(self, 'trainer', None)
        done: set[int] = set()
        for callback in getattr(trainer, 'callbacks', []) or []:
            finished = getattr(callback, 'finished_ids', None)
            if callable(finished):
                done |= set(finished())
        return done

    def predict_dataloader(self) -> DataLoader[dict[str, Any]]:
        """The patches not yet written, in id order.

        Returns:
            A loader without shuffling (Lightning shards it over ranks without
            repeating a patch).
        """
        assert self.dataset is not None, 'call setup first'
        done = self.finished()
        todo = [i for i in range(len(self.dataset)) if i not in done]
        data: Dataset[dict[str, Any]] = (
            self.dataset
            if len(todo) == len(self.dataset)
            else Subset(self.dataset, todo)
        )
        return DataLoader(
            data,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            shuffle=False,
        )


__all__ = (
    'ChipPatches',
    'EmbeddingDataModule',
    'RasterWindows',
    'ShardMember',
    'ShardPatches',
    'chip_footprints',
    'fit_config_data',
    'index_shards',
    'pixel_footprint',
    'shard_crs',
    'shard_footprint',
    'shard_stream',
    'skipped_shards',
)
