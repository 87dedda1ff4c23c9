"""Write the embeddings of a Lightning ``predict`` run: resumable, once per patch.

:class:`EmbeddingWriter` is a :class:`~lightning.pytorch.callbacks.BasePredictionWriter`
for :class:`~torchgeo_decur.tasks.embedding.EmbeddingTask` predictions. Every
rank writes each batch as a part file ``<output_dir>/.parts/part-<first id>.parquet``
as soon as it is computed; when the loop ends, rank 0 merges the parts of all
ranks (the output folder must be shared by them) into

* ``embeddings.parquet``: GeoParquet, one row per patch (see
  :mod:`torchgeo_decur.embeddings`);
* for raster runs, ``embeddings.tif`` (``embeddings_<m>.tif`` per modality when
  not fused): a tiled, compressed, georeferenced float32 GeoTIFF with one cell
  per window centre and one band per vector entry, or the first
  ``geotiff_bands`` principal components.

A run that stops early leaves its parts; the next run with the same settings
skips the patches they hold (:meth:`EmbeddingWriter.finished_ids`, read by
:class:`~torchgeo_decur.datamodules.embedding.EmbeddingDataModule`). Other
settings than those recorded in ``.parts/settings.json`` are refused, and so is
an existing ``embeddings.parquet``, unless ``overwrite``.
"""

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from lightning.pytorch.callbacks import BasePredictionWriter

from ..embeddings import (
    cell_grid,
    geoparquet_bytes,
    geotiff_bytes,
    parquet_bytes,
    part_table,
    pca,
    vector_columns,
    write_bytes,
)

#: The merged vectors in an output folder.
PARQUET = 'embeddings.parquet'
#: Folder of the per-batch part files and the recorded settings.
PARTS = '.parts'


def _jsonable(value: Any) -> Any:
    """Settings as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


class EmbeddingWriter(BasePredictionWriter):
    """Write :class:`~torchgeo_decur.tasks.embedding.EmbeddingTask` predictions."""

    def __init__(
        self,
        output_dir: str,
        overwrite: bool = False,
        geotiff: bool = True,
        geotiff_bands: int | None = None,
    ) -> None:
        """Initialize a new EmbeddingWriter instance.

        Args:
            output_dir: Folder of the outputs (created if needed).
            overwrite: Start over, replacing existing outputs and parts.
            geotiff: Also write the dense GeoTIFF of a raster run.
            geotiff_bands: Principal components in the GeoTIFF (None: every
                vector entry as a band).

        Raises:
            ValueError: If ``geotiff_bands`` is below 1.
        """
        super().__init__(write_interval='batch')
        if geotiff_bands is not None and geotiff_bands < 1:
            raise ValueError(f'geotiff_bands must be >= 1, got {geotiff_bands}')
        self.output_dir = os.fspath(output_dir)
        self.overwrite = overwrite
        self.geotiff = geotiff
        self.geotiff_bands = geotiff_bands
        self.settings: dict[str, Any] = {}
        #: After the run: counts, paths and seconds (rank 0).
        self.summary: dict[str, Any] = {}
        self._written = 0
        self._start = 0.0

    @property
    def parquet_path(self) -> str:
        """Path of the merged GeoParquet file."""
        return os.path.join(self.output_dir, PARQUET)

    @property
    def parts_dir(self) -> str:
        """Folder of the part files."""
        return os.path.join(self.output_dir, PARTS)

    def _settings_path(self) -> str:
        return os.path.join(self.parts_dir, 'settings.json')

    def part_files(self) -> list[str]:
        """Part files written so far, sorted by name."""
        if not os.path.isdir(self.parts_dir):
            return []
        return sorted(
            os.path.join(self.parts_dir, n)
            for n in os.listdir(self.parts_dir)
            if n.startswith('part-') and n.endswith('.parquet')
        )

    def finished_ids(self) -> set[int]:
        """Patch ids that part files already hold."""
        done: set[int] = set()
        for path in self.part_files():
            ids = pq.read_table(path, columns=['patch_id'])['patch_id'].to_numpy()
            done.update(int(i) for i in ids)
        return done

    def check_output(self) -> None:
        """Refuse an existing merged output unless ``overwrite``.

        Raises:
            FileExistsError: If ``embeddings.parquet`` exists.
        """
        if not self.overwrite and os.path.exists(self.parquet_path):
            raise FileExistsError(
                f'{self.parquet_path!r} exists; pass --overwrite (overwrite=True) to '
                'compute it again'
            )

    def _check(self, settings: dict[str, Any]) -> None:
        """Refuse an existing output or changed settings (every rank, no writes)."""
        self.check_output()
        if self.overwrite:
            return
        if os.path.isfile(self._settings_path()):
            with open(self._settings_path()) as f:
                recorded = json.load(f)
            changed = sorted(
                k
                for k in set(recorded) | set(settings)
                if recorded.get(k) != settings.get(k)
            )
            if changed:
                detail = '; '.join(
                    f'{k}: {recorded.get(k)!r} -> {settings.get(k)!r}' for k in changed
                )
                raise ValueError(
                    f'the unfinished run in {self.parts_dir!r} used other settings '
                    f'({detail}); rerun with its settings to resume, or pass '
                    '--overwrite to start over'
                )

    def setup(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str
    ) -> None:
        """Check the output folder, record the settings and start the clock.

        Raises:
            FileExistsError: If the merged file exists and ``overwrite`` is False.
            ValueError: If unfinished parts were written with other settings.
        """
        settings: dict[str, Any] = {}
        for owner in (pl_module, getattr(trainer, 'datamodule', None)):
            describe = getattr(owner, 'embedding_settings', None)
            if callable(describe):
                settings |= describe()
        self.settings = _jsonable(settings)
        self._check(self.settings)
        trainer.strategy.barrier('embedding_writer_check')
        if trainer.is_global_zero:
            if self.overwrite:
                shutil.rmtree(self.parts_dir, ignore_errors=True)
                for name in (
                    os.listdir(self.output_dir)
                    if os.path.isdir(self.output_dir)
                    else []
                ):
                    if name.startswith('embeddings') and name.endswith(
                        ('.parquet', '.tif')
                    ):
                        os.remove(os.path.join(self.output_dir, name))
            os.makedirs(self.parts_dir, exist_ok=True)
            if not os.path.isfile(self._settings_path()):
                text = json.dumps(self.settings, indent=2).encode()
                write_bytes(self._settings_path(), text, overwrite=True)
        trainer.strategy.barrier('embedding_writer_ready')
        self.overwrite = False  # the rest of this run resumes, never restarts
        self._written = 0
        self._start = time.perf_counter()

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Write one batch as a part file (atomically)."""
        ids = prediction['patch_id'].detach().cpu().numpy()
        if ids.size == 0:
            return
        vectors = {
            k: v.detach().cpu().float().numpy()
            for k, v in prediction.items()
            if k.startswith('embedding')
        }
        bounds = prediction['bounds'].detach().cpu().numpy()
        table = part_table(ids, bounds, vectors, prediction.get('crs'))
        name = f'part-{int(ids.min()):010d}.parquet'
        write_bytes(os.path.join(self.parts_dir, name), parquet_bytes(table), True)
        self._written += int(ids.size)

    def on_predict_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        """Merge the parts of every rank (rank 0) once all ranks are done."""
        trainer.strategy.barrier('embedding_writer_done')
        if trainer.is_global_zero:
            labels = getattr(getattr(trainer, 'datamodule', None), 'labels', None)
            self.summary = self.merge(labels)
            self.summary['written_now'] = self._written
            self.summary['seconds'] = time.perf_counter() - self._start

    def merge(
        self, labels: Sequence[str] | Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """Merge the part files into the outputs and remove them.

        Args:
            labels: Name of each patch id (chip keys), column name -> names
                (shard runs: ``shard`` and ``key``), or None.

        Returns:
            ``patches``, ``dims`` and ``files`` written.

        Raises:
            ValueError: If a patch is missing or was written twice.
        """
        parts = self.part_files()
        if not parts:
            raise ValueError(f'{self.parts_dir!r} holds no part files to merge')
        table = pa.concat_tables([pq.read_table(p) for p in parts])
        table = table.sort_by('patch_id')
        ids = table['patch_id'].to_numpy()
        expected = int(self.settings.get('patches', ids.size))
        if np.unique(ids).size != ids.size:
            raise ValueError(
                f'{self.parts_dir!r}: patches written more than once: '
                f'{sorted(set(ids[1:][np.diff(ids) == 0].tolist()))[:10]}'
            )
        if ids.size != expected:
            missing = sorted(set(range(expected)) - set(ids.tolist()))
            raise ValueError(
                f'{self.parts_dir!r} holds {ids.size} of {expected} patches (missing '
                f'ids {missing[:10]}...); run again to compute the rest (on several '
                'nodes, the output folder must be shared)'
            )
        crs = self.settings.get('crs')
        files = {'parquet': self.parquet_path}
        data = geoparquet_bytes(table, crs, self.settings, labels)
        write_bytes(self.parquet_path, data, overwrite=True)
        dims = {n: int(table[n].type.list_size) for n in vector_columns(table)}
        if self.geotiff and self.settings.get('kind') == 'rasters':
            files |= self._write_geotiffs(table)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return {'patches': int(ids.size), 'dims': dims, 'files': files}

    def _write_geotiffs(self, table: pa.Table) -> dict[str, str]:
        bounds = np.stack(
            [table[n].to_numpy() for n in ('minx', 'miny', 'maxx', 'maxy')], axis=1
        )
        grid = cell_grid(
            bounds, int(self.settings['patch_size']), int(self.settings['stride'])
        )
        out = {}
        for name in vector_columns(table):
            column = table[name].combine_chunks()
            vectors = column.values.to_numpy().reshape(-1, column.type.list_size)
            if self.geotiff_bands is not None:
                vectors = pca(vectors, self.geotiff_bands)
                descriptions = [f'pc_{i + 1}' for i in range(vectors.shape[1])]
            else:
                descriptions = [f'dim_{i}' for i in range(vectors.shape[1])]
            tags = {
                'torchgeo_decur': json.dumps(self.settings),
                'bands': 'principal components' if self.geotiff_bands else 'vector',
            }
            data = geotiff_bytes(
                vectors, grid, str(self.settings['crs']), descriptions, tags
            )
            path = os.path.join(
                self.output_dir,
                'embeddings.tif'
                if name == 'embedding'
                else f'embeddings_{name[10:]}.tif',
            )
            write_bytes(path, data, overwrite=True)
            out[f'geotiff:{name}'] = path
        return out


__all__ = ('PARQUET', 'PARTS', 'EmbeddingWriter')
