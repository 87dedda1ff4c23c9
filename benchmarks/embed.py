"""Patches per second of ``torchgeo-decur embed`` over a raster or shards, end to end.

Writes a randomly initialised encoder of ``--model`` as an export (the layout of
``torchgeo-decur export``, with statistics beside it), then runs the embedding
(Lightning ``predict``: reading the windows, scaling, the encoder, the
GeoParquet parts and the merge into GeoParquet and GeoTIFF) over ``--raster``
(default: the Sentinel-2 file of the own-rasters test fixture), or with
``--shards`` over one modality folder of TerraMesh-layout shards (each sample a
patch; reading and decoding the tar members instead of raster windows),
``--repeats`` times into fresh folders. Reports patches per second of each run (best and
median) and of the encoder alone on the same batches, so the share of reading
and writing shows. On a machine shared with other jobs the numbers are
indicative only.

Example::

    python -m benchmarks.embed --model resnet50 --patch-size 64 --stride 32
    python -m benchmarks.embed --shards tests/data/terramesh/train/S2L1C
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any

import timm
import torch

from .common import emit, environment, pick_device, synchronize

FIXTURE = os.path.join('tests', 'data', 'own_rasters', 's2')


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; ``argv`` defaults to the command line."""
    from lightning.pytorch import Trainer
    from torchgeo.datasets import RasterDataset

    from torchgeo_decur.callbacks import EmbeddingWriter
    from torchgeo_decur.datamodules.embedding import EmbeddingDataModule
    from torchgeo_decur.tasks.embedding import EmbeddingTask

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--raster', default=FIXTURE, help='raster file or folder')
    p.add_argument(
        '--shards', help='folder of shards of one modality (instead of --raster)'
    )
    p.add_argument('--model', default='resnet18', help='timm architecture')
    p.add_argument('--patch-size', type=int, default=32)
    p.add_argument('--stride', type=int, default=16)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'auto'")
    p.add_argument('--repeats', type=int, default=3)
    args = p.parse_args(argv)

    device = pick_device(args.device)

    def data_module() -> EmbeddingDataModule:
        if args.shards is not None:
            return EmbeddingDataModule(
                shards={'image': args.shards},
                batch_size=args.batch_size,
                num_workers=args.num_workers,
            )
        return EmbeddingDataModule(
            {'image': RasterDataset(paths=args.raster)},
            patch_size=args.patch_size,
            stride=args.stride,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
        )

    probe = data_module()
    probe.setup('predict')
    assert probe.dataset is not None
    first = probe.dataset[0]['image_image']
    bands, size = int(first.shape[0]), int(first.shape[-1])
    torch.manual_seed(0)
    encoder = timm.create_model(args.model, in_chans=bands, num_classes=0)
    runs: list[float] = []
    encoder_only: list[float] = []
    patches = 0
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, 'bench_image_decur.pth')
        torch.save(encoder.state_dict(), source)
        stats = {'image': {'mean': [1000.0] * bands, 'std': [500.0] * bands}}
        with open(os.path.join(tmp, 'bench_input_scaling.json'), 'w') as f:
            json.dump({'statistics': stats}, f)
        for repeat in range(args.repeats):
            task = EmbeddingTask(source, model=args.model)
            data = data_module()
            writer = EmbeddingWriter(os.path.join(tmp, f'run{repeat}'))
            trainer = Trainer(
                accelerator='gpu' if device.type == 'cuda' else 'cpu',
                devices=1,
                logger=False,
                callbacks=[writer],
                enable_progress_bar=False,
                enable_model_summary=False,
            )
            start = time.perf_counter()
            trainer.predict(task, data, return_predictions=False)
            runs.append(time.perf_counter() - start)
            patches = int(writer.summary['patches'])
        # The encoder alone on the same number of (random) patches.
        model = task.to(device).eval()
        x = torch.rand(args.batch_size, bands, size, size)
        x = x.to(device)
        batches = -(-patches // args.batch_size)
        for _ in range(args.repeats):
            synchronize(device)
            start = time.perf_counter()
            with torch.inference_mode():
                for _ in range(batches):
                    model.embed({'image_image': x})
            synchronize(device)
            encoder_only.append(time.perf_counter() - start)
    result: dict[str, Any] = {
        'benchmark': 'embed',
        'data': args.shards or args.raster,
        'kind': 'shards' if args.shards else 'raster',
        'bands': bands,
        'model': args.model,
        'patch_size': size,
        'stride': None if args.shards else args.stride,
        'batch_size': args.batch_size,
        'num_workers': args.num_workers,
        'patches': patches,
        'repeats': args.repeats,
        'seconds': runs,
        'patches_per_second': patches / min(runs),
        'patches_per_second_median': patches / statistics.median(runs),
        'encoder_only_patches_per_second': batches
        * args.batch_size
        / min(encoder_only),
        'environment': environment(device),
    }
    emit(result)


if __name__ == '__main__':
    main()
