"""Embedding files: GeoParquet vectors, dense GeoTIFFs, nearest patches, pictures.

The GeoParquet file of an embedding run has one row per patch::

    patch_id (int64), key (chips and shards), shard (shards only), geometry
    (the patch footprint, or a shard sample's centre point, in the CRS of the
    file's ``geo`` metadata; null without georeference), crs, minx, miny, maxx,
    maxy (shards only: each sample's footprint in its own CRS, null where only
    the centre or nothing is known), embedding or embedding_<modality>
    (fixed-size lists of float32)

Shard samples lie in different CRSs (UTM zones) while a GeoParquet geometry
column has one, so their footprints are reprojected to EPSG:4326 (the four
corners, without densified edges: fine for patches of a few kilometres).

and records how the vectors were made (encoder, model, modalities, fusion, input
scaling, patch size, stride, inputs) as JSON under the ``torchgeo_decur`` key of
the file metadata (:data:`METADATA_KEY`). It reads with
``geopandas.read_parquet``; :func:`read_embeddings` also returns the vectors as
arrays. Every file is written atomically (a temporary file, then ``os.replace``)
with the umask's permissions.
"""

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .checkpoints.files import save_atomically

#: File-metadata key of the run description in the GeoParquet file.
METADATA_KEY = b'torchgeo_decur'


def vector_columns(table: pa.Table) -> list[str]:
    """Names of the embedding columns (``embedding``, ``embedding_<m>``)."""
    return [n for n in table.column_names if n.startswith('embedding')]


def _as_list_array(vectors: np.ndarray) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, int(vectors.shape[1]))


def parquet_bytes(table: pa.Table) -> bytes:
    """A table serialised as a Parquet file (zstd-compressed)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression='zstd')
    return bytes(sink.getvalue().to_pybytes())


#: Columns of a patch's bounds.
BOUNDS = ('minx', 'miny', 'maxx', 'maxy')


def part_table(
    patch_ids: np.ndarray,
    bounds: np.ndarray,
    vectors: Mapping[str, np.ndarray],
    crs: Sequence[str] | None = None,
) -> pa.Table:
    """One written batch: ids, bounds (and their CRS per row) and vectors.

    Args:
        patch_ids: (N,) patch ids.
        bounds: (N, 4) minx, miny, maxx, maxy.
        vectors: Column name → (N, D) vectors.
        crs: (N,) CRS of each row's bounds (``''``: none), for data whose
            patches lie in different CRSs (shards); None: the run's CRS.

    Returns:
        The table of a part file.
    """
    columns: dict[str, Any] = {'patch_id': pa.array(patch_ids.astype(np.int64))}
    for i, name in enumerate(BOUNDS):
        columns[name] = pa.array(bounds[:, i].astype(np.float64))
    if crs is not None:
        columns['crs'] = pa.array([str(c) for c in crs], pa.string())
    for name, v in vectors.items():
        columns[name] = _as_list_array(v)
    return pa.table(columns)


def geoparquet_bytes(
    table: pa.Table,
    crs: str | None,
    metadata: Mapping[str, Any],
    labels: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
) -> bytes:
    """GeoParquet file of merged parts: footprints as geometry, run metadata.

    Rows whose bounds are a point (``minx == maxx`` and ``miny == maxy``) get a
    point geometry, rows with NaN bounds a null one. A table with a ``crs``
    column (shard runs) gives each row's bounds in its own CRS: footprints are
    reprojected to ``crs`` (their four corners) and kept as they are in the
    columns ``crs``, ``minx``, ``miny``, ``maxx``, ``maxy`` (null for points
    and rows without bounds).

    Args:
        table: Parts concatenated (see :func:`part_table`), sorted by id.
        crs: CRS of the geometry (WKT or any pyproj input), or None.
        metadata: Run description stored under :data:`METADATA_KEY`.
        labels: Name of each patch id (chip keys), stored as ``key``, or
            column name -> name of each patch id (e.g. ``shard`` and ``key``).

    Returns:
        The file's bytes.
    """
    import geopandas
    import shapely

    b = np.stack([table[n].to_numpy() for n in BOUNDS], 1)
    valid = np.isfinite(b).all(axis=1)
    boxes = shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
    points = valid & (b[:, 0] == b[:, 2]) & (b[:, 1] == b[:, 3])
    boxes[points] = shapely.points(b[points, 0], b[points, 1])
    boxes[~valid] = None
    ids = table['patch_id'].to_numpy()
    frame: dict[str, Any] = {'patch_id': ids}
    named = labels if isinstance(labels, Mapping) else {'key': labels}
    for column, names in named.items():
        if names is not None:
            frame[column] = [names[int(i)] for i in ids]
    if 'crs' in table.column_names:
        own = np.array(table['crs'].to_pylist(), dtype=object)
        boxes = _reproject(boxes, own, crs)
        footprint = valid & ~points & (own != '')
        frame['crs'] = [c if f else None for c, f in zip(own, footprint, strict=True)]
        for i, name in enumerate(BOUNDS):
            frame[name] = np.where(footprint, b[:, i], np.nan)
    gdf = geopandas.GeoDataFrame(frame, geometry=boxes, crs=crs)
    buffer = io.BytesIO()
    gdf.to_parquet(buffer, index=False)
    out = pq.read_table(io.BytesIO(buffer.getvalue()))
    for name in vector_columns(table):
        out = out.append_column(name, table[name])
    meta = dict(out.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(dict(metadata)).encode()
    return parquet_bytes(out.replace_schema_metadata(meta))


def _reproject(geometry: np.ndarray, own: np.ndarray, crs: str | None) -> np.ndarray:
    """Geometries given in their own CRSs, in ``crs`` (vertices transformed).

    Args:
        geometry: (N,) shapely geometries (or None).
        own: (N,) CRS of each (``''`` or None: none; left as it is).
        crs: The target CRS.

    Returns:
        (N,) geometries in ``crs``.
    """
    import shapely
    from pyproj import CRS, Transformer

    out = geometry.copy()
    if crs is None:
        return out
    target = CRS.from_user_input(crs)
    for name in sorted({str(c) for c in own if c}):
        source = CRS.from_user_input(name)
        if source == target:
            continue
        rows = np.flatnonzero(own == name)
        transformer = Transformer.from_crs(source, target, always_xy=True)

        def move(xy: np.ndarray, transformer: Transformer = transformer) -> np.ndarray:
            return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

        out[rows] = shapely.transform(geometry[rows], move)
    return out


@dataclass
class Embeddings:
    """What :func:`read_embeddings` returns.

    Attributes:
        frame: GeoDataFrame: ``patch_id``, ``geometry`` (and ``key``,
            ``shard``; for shard runs ``crs``, ``minx``, ``miny``, ``maxx``,
            ``maxy``).
        vectors: Column name → (N, D) float32 vectors, rows as in ``frame``.
        metadata: The run description.
    """

    frame: Any
    vectors: dict[str, np.ndarray]
    metadata: dict[str, Any]


def read_embeddings(path: str | os.PathLike[str]) -> Embeddings:
    """Read a GeoParquet embedding file.

    Args:
        path: The file.

    Returns:
        Footprints, vectors and run description.

    Raises:
        FileNotFoundError: If it does not exist.
        ValueError: If it is not an embedding file of this package.
    """
    import geopandas

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'embedding file {path!r} does not exist')
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f'{path!r} is not a Parquet file: {err}') from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    names = vector_columns(table)
    if raw is None or not names:
        raise ValueError(
            f'{path!r} is not an embedding file of torchgeo-decur embed (no '
            f'{METADATA_KEY.decode()} metadata or embedding column)'
        )
    vectors = {}
    for name in names:
        column = table[name].combine_chunks()
        width = column.type.list_size
        vectors[name] = column.values.to_numpy().reshape(-1, width)
    frame = geopandas.read_parquet(
        path,
        columns=['patch_id', 'geometry']
        + [n for n in ('shard', 'key', 'crs', *BOUNDS) if n in table.column_names],
    )
    return Embeddings(frame, vectors, json.loads(raw))


def pca(vectors: np.ndarray, components: int) -> np.ndarray:
    """Project vectors on their first principal components.

    Args:
        vectors: (N, D) vectors.
        components: How many components (at most min(N, D)).

    Returns:
        (N, components) float32 scores, component 1 first (its sign fixed so
        that its largest loading is positive).
    """
    x = vectors.astype(np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    k = min(components, vt.shape[0])
    basis = vt[:k]
    signs = np.sign(basis[np.arange(k), np.abs(basis).argmax(axis=1)])
    scores = x @ (basis * signs[:, None]).T
    if k < components:
        scores = np.pad(scores, ((0, 0), (0, components - k)))
    return scores.astype(np.float32)


def to_unit(values: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Stretch each column's ``low``-``high`` percentiles to [0, 1] (clipped)."""
    lo = np.nanpercentile(values, low, axis=0)
    hi = np.nanpercentile(values, high, axis=0)
    scaled: np.ndarray = np.clip(
        (values - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0
    )
    return scaled


@dataclass
class CellGrid:
    """The grid of a dense embedding raster: one cell per window centre.

    Attributes:
        rows: Row (from the north) of each patch.
        cols: Column of each patch.
        height: Rows.
        width: Columns.
        transform: rasterio Affine of the grid.
    """

    rows: np.ndarray
    cols: np.ndarray
    height: int
    width: int
    transform: Any


def cell_grid(bounds: np.ndarray, patch_size: int, stride: int) -> CellGrid:
    """Place windows on a grid of ``stride``-pixel cells around their centres.

    The cell of a window is its central ``stride`` x ``stride`` pixels, so
    cells of neighbouring windows tile the ground without overlap.

    Args:
        bounds: (N, 4) minx, miny, maxx, maxy of the windows.
        patch_size: Window side in pixels.
        stride: Pixels between window corners.

    Returns:
        Cell of every window and the grid's georeference.
    """
    from rasterio.transform import from_origin

    rx = (bounds[0, 2] - bounds[0, 0]) / patch_size
    ry = (bounds[0, 3] - bounds[0, 1]) / patch_size
    cx, cy = stride * rx, stride * ry
    x0 = bounds[:, 0].min() + (patch_size - stride) / 2 * rx
    y0 = bounds[:, 1].min() + (patch_size - stride) / 2 * ry
    centre_x = (bounds[:, 0] + bounds[:, 2]) / 2
    centre_y = (bounds[:, 1] + bounds[:, 3]) / 2
    cols = np.floor((centre_x - x0) / cx + 1e-9).astype(np.int64)
    up = np.floor((centre_y - y0) / cy + 1e-9).astype(np.int64)
    height, width = int(up.max()) + 1, int(cols.max()) + 1
    top = y0 + height * cy
    return CellGrid(height - 1 - up, cols, height, width, from_origin(x0, top, cx, cy))


def geotiff_bytes(
    vectors: np.ndarray,
    grid: CellGrid,
    crs: str,
    descriptions: Sequence[str],
    tags: Mapping[str, str],
) -> bytes:
    """A tiled, deflate-compressed float32 GeoTIFF, one band per vector entry.

    Args:
        vectors: (N, B) values of each window.
        grid: Where each window goes (see :func:`cell_grid`).
        crs: CRS of the grid.
        descriptions: One name per band.
        tags: Dataset tags (run description).

    Returns:
        The file's bytes; cells without a window are NaN (the nodata value).
    """
    from rasterio.io import MemoryFile

    bands = vectors.shape[1]
    image = np.full((bands, grid.height, grid.width), np.nan, dtype=np.float32)
    image[:, grid.rows, grid.cols] = vectors.T
    block = (
        256
        if max(grid.height, grid.width) > 256
        else 16 * max(1, math.ceil(max(grid.height, grid.width) / 16))
    )
    profile = {
        'driver': 'GTiff',
        'height': grid.height,
        'width': grid.width,
        'count': bands,
        'dtype': 'float32',
        'crs': crs,
        'transform': grid.transform,
        'nodata': float('nan'),
        'tiled': True,
        'blockxsize': block,
        'blockysize': block,
        'compress': 'deflate',
        'predictor': 3,
        'interleave': 'pixel' if bands <= 4 else 'band',
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as dst:
            dst.write(image)
            for i, text in enumerate(descriptions, start=1):
                dst.set_band_description(i, text)
            dst.update_tags(**tags)
        return bytes(memory.read())


def write_bytes(path: str | os.PathLike[str], data: bytes, overwrite: bool) -> str:
    """Write a file atomically (see :func:`~.checkpoints.files.save_atomically`)."""
    save_atomically({path: data}, overwrite=overwrite)
    return os.fspath(path)


@dataclass
class Neighbour:
    """One answer of :func:`nearest_patches`.

    Attributes:
        patch_id: The patch.
        distance: Its distance to the query vector.
        bounds: Its footprint (minx, miny, maxx, maxy), NaN without one.
        key: Its chip key (chip runs) or ``<shard>:<sample key>`` (shard
            runs), else None.
    """

    patch_id: int
    distance: float
    bounds: tuple[float, float, float, float]
    key: str | None = None


def _query_row(
    emb: Embeddings, path: str, patch_id: int | None, point: Sequence[float] | None
) -> int:
    frame = emb.frame
    if (patch_id is None) == (point is None):
        raise ValueError('give exactly one of a patch id and a coordinate')
    if patch_id is not None:
        rows = np.flatnonzero(frame['patch_id'].to_numpy() == patch_id)
        if rows.size == 0:
            ids = frame['patch_id']
            raise ValueError(
                f'{path!r} has no patch {patch_id} (ids {ids.min()}-{ids.max()})'
            )
        return int(rows[0])
    import shapely

    assert point is not None
    where = shapely.Point(float(point[0]), float(point[1]))
    geometry = frame.geometry.to_numpy()
    hits = np.flatnonzero(frame.geometry.covers(where).to_numpy())
    if hits.size == 0 and emb.metadata.get('kind') == 'shards':
        # Shard samples lie apart (footprints, or centre points where only the
        # centre is known): the nearest one is meant.
        known = np.flatnonzero(frame.geometry.notna().to_numpy())
        if known.size:
            gaps = shapely.distance(geometry[known], where)
            return int(known[int(np.argmin(gaps))])
    if hits.size == 0:
        raise ValueError(
            f'no patch of {path!r} covers ({point[0]}, {point[1]}) in its CRS '
            f'{frame.crs.to_string() if frame.crs is not None else None} (the patches '
            f'span {list(frame.total_bounds)})'
        )
    # The patch whose centre is nearest the point.
    # shapely, not GeoSeries: no warning for lon/lat (the order is all that counts).
    centres = shapely.centroid(geometry[hits])
    return int(hits[int(np.argmin(shapely.distance(centres, where)))])


def nearest_patches(
    path: str | os.PathLike[str],
    k: int = 5,
    *,
    patch_id: int | None = None,
    point: Sequence[float] | None = None,
    column: str | None = None,
    metric: str = 'cosine',
) -> list[Neighbour]:
    """The ``k`` patches most similar to a given patch or to the one at a point.

    Args:
        path: GeoParquet embedding file.
        k: How many neighbours (the query patch itself is left out).
        patch_id: The query patch.
        point: ``(x, y)`` in the file's CRS: the patch covering it (the one
            whose centre is nearest when windows overlap) is the query; in a
            shard run, where samples lie apart, the nearest sample (footprint
            or centre point) when none covers it.
        column: Vector column (default: the only one; ``embedding_<m>`` for a
            per-modality file).
        metric: ``'cosine'`` (1 - cosine similarity) or ``'euclidean'``.

    Returns:
        Neighbours, nearest first.

    Raises:
        ValueError: For an unknown patch, a point outside every patch, an
            ambiguous or unknown column or metric, or ``k`` < 1.
    """
    path = os.fspath(path)
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    if metric not in ('cosine', 'euclidean'):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    emb = read_embeddings(path)
    if column is None:
        if len(emb.vectors) != 1:
            raise ValueError(
                f'{path!r} has the vector columns {sorted(emb.vectors)}; choose one'
            )
        (column,) = emb.vectors
    if column not in emb.vectors:
        raise ValueError(
            f'{path!r} has no column {column!r}; it has {sorted(emb.vectors)}'
        )
    vectors = emb.vectors[column].astype(np.float64)
    row = _query_row(emb, path, patch_id, point)
    if metric == 'cosine':
        unit = vectors / np.maximum(
            np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12
        )
        distance = 1.0 - unit @ unit[row]
    else:
        distance = np.linalg.norm(vectors - vectors[row], axis=1)
    distance[row] = np.inf
    order = np.argsort(distance, kind='stable')[: min(k, len(distance) - 1)]
    frame = emb.frame
    bounds = frame.geometry.bounds.to_numpy()
    keys = frame['key'].tolist() if 'key' in frame else None
    if keys is not None and 'shard' in frame:
        keys = [f'{s}:{k}' for s, k in zip(frame['shard'], keys, strict=True)]
    return [
        Neighbour(
            int(frame['patch_id'].iloc[i]),
            float(distance[i]),
            (
                float(bounds[i, 0]),
                float(bounds[i, 1]),
                float(bounds[i, 2]),
                float(bounds[i, 3]),
            ),
            None if keys is None else str(keys[i]),
        )
        for i in order
    ]


def pca_image(
    path: str | os.PathLike[str], column: str | None = None
) -> tuple[np.ndarray, CellGrid]:
    """The first three principal components of a raster run as an RGB image.

    Args:
        path: GeoParquet embedding file of a raster run.
        column: Vector column (default: the first).

    Returns:
        ``(image (H, W, 3) in [0, 1], NaN where no patch, grid)``.

    Raises:
        ValueError: If the file is not of a raster run.
    """
    emb = read_embeddings(path)
    meta = emb.metadata
    if meta.get('kind') != 'rasters':
        raise ValueError(
            f'{os.fspath(path)!r} is not from a raster run; no map to draw'
        )
    vectors = emb.vectors[column or next(iter(emb.vectors))]
    bounds = emb.frame.geometry.bounds.to_numpy()
    grid = cell_grid(bounds, int(meta['patch_size']), int(meta['stride']))
    rgb = to_unit(pca(vectors, 3))
    image = np.full((grid.height, grid.width, 3), np.nan, dtype=np.float32)
    image[grid.rows, grid.cols] = rgb
    return image, grid


def embedding_picture(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    modality: str | None = None,
    overwrite: bool = False,
) -> str:
    """Draw the PCA of a raster run's embeddings beside the input, as a PNG.

    Left: bands 4, 3, 2 (Sentinel-2 order) of the first (or ``modality``'s)
    input for rasters of 4 or more bands, bands 1-3 for three, band 1 in grey
    otherwise, stretched between the 2nd and 98th percentiles and read on the
    embedding grid's extent; right: principal components 1-3 of the vectors as
    red, green and blue, one cell per patch.

    Args:
        path: GeoParquet embedding file of a raster run.
        output: PNG to write (atomically).
        modality: Input drawn on the left (default: the first).
        overwrite: Replace an existing PNG.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from torchgeo.datasets import RasterDataset

    if os.path.exists(output) and not overwrite:
        raise FileExistsError(
            f'{os.fspath(output)!r} exists; pass --overwrite to replace it'
        )
    image, grid = pca_image(path)
    meta = read_embeddings(path).metadata
    inputs = meta['inputs']
    name = modality or next(iter(inputs))
    height, width = grid.height, grid.width
    left, top = grid.transform.c, grid.transform.f
    right = left + width * grid.transform.a
    bottom = top + height * grid.transform.e
    scale = max(1, round(256 / max(height, width)))
    res = (right - left) / (width * scale)
    data = RasterDataset(paths=inputs[name], crs=meta['crs'], res=(res, res))
    sample = data[left:right, bottom:top]
    raster = sample['image'].numpy()
    picks = (
        [3, 2, 1]
        if raster.shape[0] >= 4
        else [0, 1, 2]
        if raster.shape[0] == 3
        else [0]
    )
    shown = to_unit(raster[picks].reshape(len(picks), -1).T).reshape(
        raster.shape[1], raster.shape[2], len(picks)
    )
    figure, axes = plt.subplots(1, 2, figsize=(10, 5), layout='constrained')
    extent = (left, right, bottom, top)
    axes[0].imshow(
        shown if len(picks) == 3 else shown[..., 0], cmap='gray', extent=extent
    )
    axes[0].set_title(f'input: {name}')
    axes[1].imshow(np.nan_to_num(image, nan=1.0), extent=extent)
    axes[1].set_title(f'embeddings: PCA 1-3 as RGB ({meta["model"]})')
    for ax in axes:
        ax.tick_params(labelsize=7)
    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format='png', dpi=100)
    finally:
        plt.close(figure)
    return write_bytes(output, buffer.getvalue(), overwrite=overwrite)


__all__ = (
    'BOUNDS',
    'METADATA_KEY',
    'CellGrid',
    'Embeddings',
    'Neighbour',
    'cell_grid',
    'embedding_picture',
    'geoparquet_bytes',
    'geotiff_bytes',
    'nearest_patches',
    'part_table',
    'pca',
    'pca_image',
    'read_embeddings',
    'to_unit',
    'vector_columns',
    'write_bytes',
)
