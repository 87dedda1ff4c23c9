"""Co-registered rasters: every modality on one grid, cut into Cloud-Optimized GeoTIFFs.

Reading a patch of a user's own rasters on the fly warps and mosaics every file that
overlaps it (:class:`~torchgeo_decur.datamodules.MultimodalGeoDataModule`), for every
patch. A co-registered store does that work once: each modality is read on the
common grid (CRS, resolution, extent = the ground all modalities cover) and written
as tiles of ``tile_size`` x ``tile_size`` px, one Cloud-Optimized GeoTIFF per tile
and modality (GDAL's COG driver: 256 px internal blocks, pixel-interleaved,
ZSTD-compressed with a predictor)::

    <store>/manifest.json                    grid, settings, source files, tiles
    <store>/<modality>/r<row>_c<col>.tif     (C_m, <= tile_size, <= tile_size)

A patch is then a windowed read of at most four tiles per modality, no
resampling. Tiles that do not touch the common ground are not written (reads
there return the nodata value). Each tile holds what the on-the-fly path reads
for that tile's bounds, in the rasters' storage type (8- and 16-bit integer
rasters as such, everything else float32); a patch whose corner lies on the grid
is bit-equal to the on-the-fly read of the same bounds.

The settings of a run, including the size and modification time of every source
file, are recorded in ``writing.json`` before the first tile is written and in
``manifest.json`` (written last) when every tile is. A rerun with the same
settings resumes, keeping the finished tiles; other settings, or a source file
changed since, are refused unless ``overwrite``, naming what changed. Write a
store with ``torchgeo-decur coregister`` (:mod:`torchgeo_decur.cli.coregister`)
and read it with the data module's ``coregistered`` argument.
"""

import json
import os
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window
from torch.utils.data import DataLoader, Dataset
from torchgeo.datasets import RasterDataset
from tqdm import tqdm

from ..checkpoints.files import file_mode
from .rasters import read_harmonized
from .resumable import MANIFEST, ResumableFolder

#: Identifies a store manifest; bumped when the layout changes.
FORMAT = 'torchgeo_decur/coregistered'
VERSION = 1
#: Marker in the names of temporary files.
TMP_MARKER = '.tmp-'
#: Settings that must agree for a rerun to resume into an existing store.
SETTING_KEYS = (
    'format',
    'version',
    'modalities',
    'datasets',
    'grid',
    'dtypes',
    'nodata',
    'compression',
    'sources',
    's2_offset_files',
)
#: Creation options of every tile (GDAL COG driver).
COG_OPTIONS: dict[str, Any] = {
    'driver': 'COG',
    'compress': 'ZSTD',
    'blocksize': 256,
    'overviews': 'NONE',
}
#: Tile files a reader keeps open at once (per process).
MAX_OPEN_TILES = 256
#: How to rebuild a store, for error messages.
REWRITE_HINT = 'rerun `torchgeo-decur coregister` with --overwrite'
#: How a store folder is written: settings record, resume, refusal, overwrite.
FOLDER = ResumableFolder(
    noun='co-registered store',
    command='torchgeo-decur coregister',
    rewrite_hint=REWRITE_HINT,
    setting_keys=SETTING_KEYS,
    data_files=('*/r*_c*.tif',),
    temporaries=(f'*/.*{TMP_MARKER}*',),
)


@dataclass(frozen=True)
class Grid:
    """The common pixel grid of a store, cut into square tiles.

    ``crs`` is the CRS as WKT, ``res`` the (x, y) pixel size in CRS units (both
    positive), ``west`` and ``north`` the coordinates of the grid's left and top
    edges, ``width`` and ``height`` its columns and rows, ``tile_size`` the side
    length of a tile in pixels (edge tiles are smaller).
    """

    crs: str
    res: tuple[float, float]
    west: float
    north: float
    width: int
    height: int
    tile_size: int

    @classmethod
    def from_json(cls, content: Mapping[str, Any]) -> 'Grid':
        """The grid recorded in a manifest."""
        values = dict(content)
        values['res'] = tuple(values['res'])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The grid as JSON values."""
        out = asdict(self)
        out['res'] = list(self.res)
        return out

    @property
    def tiles_across(self) -> int:
        """Tile columns."""
        return -(-self.width // self.tile_size)

    @property
    def tiles_down(self) -> int:
        """Tile rows."""
        return -(-self.height // self.tile_size)

    def tile_window(self, row: int, col: int) -> Window:
        """Pixel window of tile (row, col) in the grid."""
        c0, r0 = col * self.tile_size, row * self.tile_size
        return Window(
            c0,
            r0,
            min(self.tile_size, self.width - c0),
            min(self.tile_size, self.height - r0),
        )

    def transform(self, col: int = 0, row: int = 0) -> Affine:
        """Affine transform of the grid with its origin at pixel (col, row)."""
        return from_origin(
            self.west + col * self.res[0],
            self.north - row * self.res[1],
            self.res[0],
            self.res[1],
        )

    def slices(
        self, col: int, row: int, width: int, height: int
    ) -> tuple[slice, slice]:
        """The torchgeo ``(x, y)`` slices of a pixel window, steps = resolution."""
        rx, ry = self.res
        x0 = self.west + col * rx
        y1 = self.north - row * ry
        return (
            slice(x0, self.west + (col + width) * rx, rx),
            slice(self.north - (row + height) * ry, y1, ry),
        )

    def pixel(self, x: float, y_top: float) -> tuple[int, int]:
        """Nearest grid (col, row) of a patch's west and north edges."""
        return (
            round((x - self.west) / self.res[0]),
            round((self.north - y_top) / self.res[1]),
        )


def tile_path(root: str, modality: str, row: int, col: int) -> str:
    """File of one tile of one modality."""
    return os.path.join(root, modality, f'r{row:04d}_c{col:04d}.tif')


def source_files(dataset: RasterDataset) -> list[str]:
    """Every file a raster dataset reads (each band file of separate-band datasets).

    Args:
        dataset: A torchgeo raster dataset.

    Returns:
        Paths, sorted.
    """
    files = list(dataset.index['filepath']) if 'filepath' in dataset.index else []
    if dataset.separate_files:
        files = [
            dataset._update_filepath(band, path)
            for path in files
            for band in dataset.bands
        ]
    return sorted({str(f) for f in files})


def fingerprints(files: Iterable[str]) -> dict[str, list[int]]:
    """``{path: [size in bytes, modification time in ns]}`` of files.

    Args:
        files: Paths.

    Returns:
        The fingerprint of each file; a file that cannot be read gets ``[-1, -1]``.
    """
    out = {}
    for path in files:
        try:
            st = os.stat(path)
            out[os.path.realpath(path)] = [st.st_size, st.st_mtime_ns]
        except OSError:
            out[os.path.realpath(path)] = [-1, -1]
    return out


def changed_source(
    recorded: Mapping[str, Mapping[str, Sequence[int]]],
    current: Mapping[str, Mapping[str, Sequence[int]]],
) -> str | None:
    """Describe the first source file that differs between two fingerprint sets.

    Args:
        recorded: ``{modality: fingerprints}`` recorded with a store.
        current: The same for the datasets now.

    Returns:
        E.g. ``"'/data/s2/a.tif' (modality 's2') changed (size ..., modified ...)"``,
        or None when they agree.
    """
    for m in sorted(set(recorded) | set(current)):
        old, new = recorded.get(m, {}), current.get(m, {})
        for path in sorted(set(old) | set(new)):
            where = f'{path!r} (modality {m!r})'
            if path not in new:
                return f'{where} was co-registered but is no longer a source'
            if path not in old:
                return f'{where} is a new source file, not in the store'
            if list(old[path]) != list(new[path]):
                if new[path][0] < 0:
                    return f'{where} is missing or unreadable now'
                return (
                    f'{where} changed after co-registration (size {old[path][0]} -> '
                    f'{new[path][0]} bytes, modification time {old[path][1]} -> '
                    f'{new[path][1]} ns)'
                )
    return None


def read_manifest(root: str) -> dict[str, Any]:
    """Read and validate the manifest of a finished store.

    Args:
        root: Store directory.

    Returns:
        The manifest.

    Raises:
        ValueError: If ``root`` holds no finished store of this format version
            (the message names the file).
    """
    file = os.path.join(root, MANIFEST)
    manifest = FOLDER.read_manifest(root)
    if manifest.get('format') != FORMAT or manifest.get('version') != VERSION:
        raise ValueError(
            f'{file!r} is not a version-{VERSION} {FORMAT} manifest (format='
            f'{manifest.get("format")!r}, version={manifest.get("version")!r}); '
            f'{REWRITE_HINT}'
        )
    missing = [k for k in (*SETTING_KEYS, 'tiles') if k not in manifest]
    if missing:
        raise ValueError(f'{file!r} lacks entries {missing}; {REWRITE_HINT}')
    return manifest


def fill_value(nodata: float | None, dtype: str) -> float:
    """What a read outside every tile returns: nodata if the type holds it, else 0."""
    if nodata is None or nodata != nodata:
        return float('nan') if nodata is not None else 0.0
    if np.can_cast(np.min_scalar_type(nodata), dtype) or np.dtype(dtype).kind == 'f':
        return nodata
    return 0.0


class CoRegisteredRasters:
    """Windowed reader of a co-registered store (no resampling, no warping).

    Tile files are opened on first use and kept open in each process (handles are
    not pickled, so every DataLoader worker opens its own).
    """

    def __init__(self, root: str) -> None:
        """Initialize a new CoRegisteredRasters instance.

        Args:
            root: Store directory.

        Raises:
            ValueError: If ``root`` holds no finished store.
        """
        self.root = root
        self.manifest = read_manifest(root)
        self.grid = Grid.from_json(self.manifest['grid'])
        self.modalities: list[str] = list(self.manifest['modalities'])
        self.dtypes: dict[str, str] = dict(self.manifest['dtypes'])
        self.channels: dict[str, int] = dict(self.manifest['channels'])
        self.tiles = {(int(r), int(c)) for r, c in self.manifest['tiles']}
        self.fill = {
            m: fill_value(self.manifest['nodata'][m], self.dtypes[m])
            for m in self.modalities
        }
        self._handles: dict[tuple[str, int, int], Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without open file handles."""
        state = self.__dict__.copy()
        state['_handles'] = {}
        return state

    def _open(self, modality: str, row: int, col: int) -> Any:
        key = (modality, row, col)
        handle = self._handles.get(key)
        if handle is None:
            path = tile_path(self.root, modality, row, col)
            try:
                handle = rasterio.open(path)
            except (RasterioError, OSError) as err:
                raise ValueError(
                    f'co-registered tile {path!r} cannot be read ({err}); '
                    f'{REWRITE_HINT}'
                ) from None
            if len(self._handles) >= MAX_OPEN_TILES:  # stay below the fd limit
                for old in self._handles.values():
                    old.close()
                self._handles.clear()
            self._handles[key] = handle
        return handle

    def read(self, modality: str, col: int, row: int, size: int) -> np.ndarray:
        """Read a square window of one modality.

        Args:
            modality: Modality name.
            col: Grid column of the window's west edge (may lie outside the grid).
            row: Grid row of the window's north edge.
            size: Side length in pixels.

        Returns:
            (C, size, size) array in the store's type of ``modality``; pixels
            outside the written tiles hold the nodata value (or 0).
        """
        grid = self.grid
        out = np.full(
            (self.channels[modality], size, size),
            self.fill[modality],
            dtype=self.dtypes[modality],
        )
        c0, c1 = max(col, 0), min(col + size, grid.width)
        r0, r1 = max(row, 0), min(row + size, grid.height)
        if c0 >= c1 or r0 >= r1:
            return out
        t = grid.tile_size
        for tr in range(r0 // t, (r1 - 1) // t + 1):
            for tc in range(c0 // t, (c1 - 1) // t + 1):
                if (tr, tc) not in self.tiles:
                    continue
                a0, a1 = max(r0, tr * t), min(r1, (tr + 1) * t)
                b0, b1 = max(c0, tc * t), min(c1, (tc + 1) * t)
                window = Window(b0 - tc * t, a0 - tr * t, b1 - b0, a1 - a0)
                src = self._open(modality, tr, tc)
                out[:, a0 - row : a1 - row, b0 - col : b1 - col] = src.read(
                    window=window
                )
        return out


class CoRegisteredGrid:
    """Every whole patch of a store's grid, as a map-style dataset of samples.

    Patches of ``patch_size`` px tile the grid from its north-west corner
    without overlap; those lying entirely inside the written tiles are kept.
    Samples are ``{'image_<m>': (C_m, patch_size, patch_size)}`` in the store's
    types, so ``torchgeo-decur shards
    torchgeo_decur.datasets.coregistered:CoRegisteredGrid --init-args
    '{"root": STORE, "patch_size": 256}' --out SHARDS`` writes a store as
    streaming shards.
    """

    def __init__(self, root: str, patch_size: int = 256) -> None:
        """Initialize a new CoRegisteredGrid instance.

        Args:
            root: Store directory.
            patch_size: Side length of a patch in pixels.

        Raises:
            ValueError: If ``root`` holds no finished store, or no whole patch
                fits in its tiles.
        """
        if isinstance(patch_size, bool) or not isinstance(patch_size, int):
            raise ValueError(f'patch_size must be an int (pixels), got {patch_size!r}')
        if patch_size < 1:
            raise ValueError(f'patch_size must be >= 1, got {patch_size}')
        self.store = CoRegisteredRasters(root)
        self.patch_size = patch_size
        grid, t = self.store.grid, self.store.grid.tile_size
        self.locations: list[tuple[int, int]] = []
        for row in range(0, grid.height - patch_size + 1, patch_size):
            for col in range(0, grid.width - patch_size + 1, patch_size):
                rows = range(row // t, (row + patch_size - 1) // t + 1)
                cols = range(col // t, (col + patch_size - 1) // t + 1)
                if all((r, c) in self.store.tiles for r in rows for c in cols):
                    self.locations.append((col, row))
        if not self.locations:
            raise ValueError(
                f'no whole {patch_size} px patch fits in the co-registered store '
                f'{root!r} ({grid.width} x {grid.height} px); use a smaller patch_size'
            )

    def __len__(self) -> int:
        """Number of patches."""
        return len(self.locations)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Patch ``index`` of every modality.

        Args:
            index: Patch number, west to east, then north to south.

        Returns:
            ``{'image_<m>': (C_m, patch_size, patch_size)}`` torch tensors.
        """
        import torch

        col, row = self.locations[index]
        return {
            f'image_{m}': torch.from_numpy(
                self.store.read(m, col, row, self.patch_size)
            )
            for m in self.store.modalities
        }


class _TileJob(Dataset[tuple[int, str]]):
    """Writes one tile (every modality) per item, so DataLoader workers write in parallel."""

    def __init__(
        self,
        datasets: Mapping[str, RasterDataset],
        output: str,
        grid: Grid,
        tiles: Sequence[tuple[int, int]],
        dtypes: Mapping[str, str],
        nodata: Mapping[str, float | None],
        offset_files: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.datasets = dict(datasets)
        self.output = output
        self.grid = grid
        self.tiles = list(tiles)
        self.dtypes = dict(dtypes)
        self.nodata = dict(nodata)
        self.offset_files = {m: frozenset(f) for m, f in (offset_files or {}).items()}

    def __len__(self) -> int:
        return len(self.tiles)

    def _done(self, path: str, window: Window, dtype: str) -> bool:
        """Whether a previous run (same settings) finished this tile file."""
        if not os.path.isfile(path):
            return False
        try:
            with rasterio.open(path) as src:
                return bool(
                    src.width == window.width
                    and src.height == window.height
                    and src.dtypes[0] == dtype
                )
        except (RasterioError, OSError):  # damaged: write it again
            return False

    def _read(self, modality: str, window: Window) -> np.ndarray:
        """What the on-the-fly path reads for the tile, in the stored type."""
        ds = self.datasets[modality]
        x, y = self.grid.slices(
            window.col_off, window.row_off, window.width, window.height
        )
        offset = self.offset_files.get(modality)
        sample = read_harmonized(ds, x, y, offset) if offset else ds[x, y]
        image = sample['image'].numpy()
        dtype = self.dtypes[modality]
        stored = image.astype(dtype)
        if not np.array_equal(stored.astype(np.float32), image, equal_nan=True):
            raise ValueError(
                f'modality {modality!r} read values that are not exact {dtype} values '
                'though its first file is of that type (files of different data '
                'types, or a nodata value outside the type?)'
            )
        return stored

    def _write(
        self, path: str, array: np.ndarray, window: Window, modality: str
    ) -> None:
        """Write one tile file atomically (temporary file + replace)."""
        folder, name = os.path.split(path)
        tmp = os.path.join(folder, f'.{name}{TMP_MARKER}{secrets.token_hex(4)}')
        kind = np.dtype(array.dtype).kind
        profile = {
            **COG_OPTIONS,
            'predictor': 3 if kind == 'f' else 2,
            'width': int(window.width),
            'height': int(window.height),
            'count': array.shape[0],
            'dtype': array.dtype.name,
            'crs': self.grid.crs,
            'transform': self.grid.transform(window.col_off, window.row_off),
            'nodata': self.nodata[modality],
        }
        try:
            with rasterio.open(tmp, 'w', **profile) as dst:
                dst.write(array)
            with open(tmp, 'rb') as f:
                os.fsync(f.fileno())
            # GDAL does not always report a failed write (a full disk can leave a
            # truncated file and no error): publish only what reads back whole.
            with rasterio.open(tmp) as src:
                back = src.read()
            if not np.array_equal(back, array, equal_nan=True):
                raise OSError(f'the written tile {tmp!r} does not read back as written')
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def __getitem__(self, index: int) -> tuple[int, str]:
        """Write tile ``index``; returns (index, error message or '')."""
        row, col = self.tiles[index]
        window = self.grid.tile_window(row, col)
        for m in self.datasets:
            path = tile_path(self.output, m, row, col)
            if self._done(path, window, self.dtypes[m]):
                continue
            try:
                array = self._read(m, window)
            except ValueError as err:
                return index, f'tile {path!r}: {err}'
            try:
                self._write(path, array, window, m)
            # GDAL's write errors (CPLE_*, e.g. a full disk) are not RasterioErrors.
            except (RasterioError, CPLE_BaseError, OSError) as err:
                return index, f'OSError: cannot write {path!r}: {err}'
        return index, ''


def _identity(item: Any) -> Any:
    """Collate function that passes each item through (picklable, unlike a lambda)."""
    return item


def write_coregistered(
    datasets: Mapping[str, RasterDataset],
    output: str,
    grid: Grid,
    tiles: Sequence[tuple[int, int]],
    dtypes: Mapping[str, str],
    nodata: Mapping[str, float | None],
    channels: Mapping[str, int],
    num_workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    offset_files: Mapping[str, Collection[str]] | None = None,
) -> dict[str, Any]:
    """Write every modality's tiles of a common grid; resume an interrupted run.

    Args:
        datasets: Modality -> torchgeo raster dataset, already set to the grid's
            CRS and resolution (e.g. by an ``IntersectionDataset``).
        output: Store directory (created).
        grid: The common grid.
        tiles: (row, col) of the tiles to write (those touching the common ground).
        dtypes: Stored numpy type per modality.
        nodata: Nodata value per modality (None: none).
        channels: Bands per modality.
        num_workers: Processes writing tiles in parallel (0: this one).
        overwrite: Delete a store already in ``output`` (whatever its settings)
            and write every tile anew.
        progress: Show a tqdm progress bar.
        offset_files: Per Sentinel-2 modality, the source files whose DN carry
            the processing baseline 04.00 offset: removed before storing, as the
            on-the-fly path does (recorded, so a store never mixes decisions).

    Returns:
        The manifest that was written.

    Raises:
        ValueError: If a tile cannot be read, or (without ``overwrite``)
            ``output`` holds a store of other settings or sources, naming what
            changed.
        OSError: If a tile cannot be written (full or read-only disk), naming it;
            no partial tile is left.
        NotADirectoryError: If ``output`` is a file.
    """
    settings: dict[str, Any] = {
        'format': FORMAT,
        'version': VERSION,
        'modalities': list(datasets),
        'datasets': {
            m: f'{type(ds).__name__}(paths={ds.paths!r})' for m, ds in datasets.items()
        },
        'grid': grid.to_json(),
        'dtypes': dict(dtypes),
        'nodata': dict(nodata),
        'compression': {k: v for k, v in COG_OPTIONS.items() if k != 'driver'},
        'sources': {m: fingerprints(source_files(ds)) for m, ds in datasets.items()},
        's2_offset_files': {m: sorted(f) for m, f in (offset_files or {}).items()},
    }
    # JSON round trip, so tuples and lists compare as the recorded values do.
    settings = json.loads(json.dumps(settings))

    def check_sources(previous: Mapping[str, Any]) -> None:
        source = changed_source(previous.get('sources') or {}, settings['sources'])
        if source is not None:
            raise ValueError(
                f'co-registered store {output!r}: source {source}; pass --overwrite '
                '(overwrite=True) to write the store anew from the current files'
            )

    FOLDER.start(output, settings, overwrite, check=check_sources)
    for m in datasets:
        os.makedirs(os.path.join(output, m), exist_ok=True)
    job = _TileJob(datasets, output, grid, tiles, dtypes, nodata, offset_files)
    loader = DataLoader(
        job, batch_size=None, num_workers=num_workers, collate_fn=_identity
    )
    for _, error in tqdm(
        loader,
        total=len(job),
        desc='Co-registering',
        unit='tile',
        disable=not progress,
    ):
        if error.startswith('OSError: '):
            raise OSError(error.removeprefix('OSError: '))
        if error:
            raise ValueError(error)
    manifest = {
        **settings,
        'channels': dict(channels),
        'tiles': [list(t) for t in tiles],
    }
    FOLDER.finish(output, manifest)
    return manifest


__all__ = (
    'CoRegisteredGrid',
    'CoRegisteredRasters',
    'Grid',
    'changed_source',
    'fingerprints',
    'read_manifest',
    'source_files',
    'write_coregistered',
)
