"""DeCUR pretraining on one GPU: this package's step against a reference-style step.

Both train the same :class:`~torchgeo_decur.DeCURTask` (ResNet-50 encoders,
8192-8192-8192 projectors, AdamW) on S1 + S2 samples stored as uint8 codes (the
reference's storage and this package's ``uint8`` cache: two 264 px views per
modality), with the same batch, the same number of DataLoader workers and pinned
memory:

``ours``
    workers only collate the uint8 samples; the batch is copied to the GPU,
    dequantised there and augmented there by the task's kornia pipelines (one
    batched call per view and modality); the step runs under bf16 autocast with
    channels-last encoders.
``reference``
    as the reference pretraining script: every worker dequantises and augments
    its samples one at a time on the CPU, and float32 224 px crops are copied to
    the GPU; the step runs under fp16 autocast with a GradScaler (the reference's
    AMP), NCHW. The per-sample augmentation uses this package's kornia pipelines
    on one sample at a time, which have the reference's distribution; the
    reference's own OpenCV/PIL code may be faster or slower per sample.

Measured for each: samples/s over ``--steps`` steps after ``--warmup``
(wall-clock, loading included, one synchronisation at the end, so loading
overlaps the GPU as in training), the share of that time the host spent
waiting for batches, peak GPU memory; then the largest batch per GPU that fits
(``--search``): batches double from ``--batch-size`` until a
``torch.cuda.OutOfMemoryError``, then a bisection down to ``--granularity``
samples, each probe running two optimisation steps on a batch already on the GPU
(so the optimizer state is allocated), within ``--search-budget`` seconds per
variant (the bracket is reported if the budget runs out).

One run on an H200 takes a few minutes; ``--tiny`` (with ``--device cpu``)
checks the script end to end (ResNet-18, batch 2, 32 px crops, tiny projector,
no warm-up, one step, a search capped at batch 2: a CPU has no out-of-memory
error to find).

Example (GPU)::

    python -m benchmarks.gpu_decur_vs_reference --device cuda \
        --output benchmarks/results/gpu/decur_vs_reference.json
"""

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from torchgeo_decur import DeCURTask
from torchgeo_decur.transforms.augmentations import (
    ModalityAugmentation,
    resolve_config,
)
from torchgeo_decur.transforms.normalize import Dequantize

from .common import (
    CycledSamples,
    emit,
    environment,
    pick_device,
    synchronize,
    write_json,
)

CHANNELS = {'s1': 2, 's2': 13}
PRESETS = {'s1': 'sar', 's2': 'optical'}
VARIANTS = ('ours', 'reference')


class UInt8Samples(CycledSamples):
    """A few random uint8 samples (two stacked views per modality), in turn."""

    def __init__(self, size: int, length: int, distinct: int = 8) -> None:
        g = torch.Generator().manual_seed(0)
        samples = [
            {
                f'image_{m}': torch.randint(
                    0, 256, (2 * c, size, size), generator=g, dtype=torch.uint8
                )
                for m, c in CHANNELS.items()
            }
            for _ in range(distinct)
        ]
        super().__init__(samples, length)


class AugmentedOnCPU(UInt8Samples):
    """Reference-style samples: dequantised and augmented one at a time."""

    def __init__(self, size: int, crop: int, length: int) -> None:
        super().__init__(size, length)
        self.augment = {
            m: ModalityAugmentation(resolve_config(PRESETS[m]), crop, c)
            for m, c in CHANNELS.items()
        }

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sample = super().__getitem__(index)
        out = {}
        for m, c in CHANNELS.items():
            x = sample[f'image_{m}'].float() / 255.0
            views = [
                self.augment[m](x[v * c : (v + 1) * c].unsqueeze(0))[0]
                for v in range(2)
            ]
            out[f'image_{m}'] = torch.cat(views)
        return out


def build_task(args: argparse.Namespace, channels_last: bool) -> DeCURTask:
    """The task both variants train, from seeded initial weights."""
    torch.manual_seed(args.seed)
    task = DeCURTask(
        modalities=tuple(CHANNELS),
        in_channels=dict(CHANNELS),
        model=args.model,
        weights=None,
        projector_dims=args.projector_dims,
        common_dim=args.projector_dims[-1] * 7 // 8,
        augmentations=dict(PRESETS),
        crop_size=args.crop,
        lr=args.lr,
    )
    if channels_last:
        task.backbones.to(memory_format=torch.channels_last)
    return task


class Trainer:
    """One variant's model, optimizer and step."""

    def __init__(
        self, variant: str, args: argparse.Namespace, device: torch.device
    ) -> None:
        self.variant = variant
        self.device = device
        self.ours = variant == 'ours'
        self.task = build_task(args, channels_last=self.ours).to(device).train()
        self.optimizer = torch.optim.AdamW(self.task.parameters(), lr=args.lr)
        self.dtype = torch.bfloat16 if self.ours else torch.float16
        # The reference's AMP: fp16 autocast with loss scaling.
        self.scaler = None if self.ours else torch.amp.GradScaler(device.type)
        self.dequantize = Dequantize()

    def step(self, batch: Mapping[str, Tensor]) -> None:
        """One optimisation step on a batch already on the device."""
        task = self.task
        with torch.autocast(self.device.type, dtype=self.dtype):
            if self.ours:
                raw = {k: self.dequantize(v) for k, v in batch.items()}
                views = task.augment(task.split_views(raw))
            else:  # augmented in the workers
                views = task.split_views(batch)
            embeddings = {}
            for m in task.modalities:
                xs = views[m]
                if self.ours:
                    xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]
                embeddings[m] = [task.embed(m, x)[1] for x in xs]
            loss = task.compute_loss(embeddings)['loss']
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def loader(self, args: argparse.Namespace, batch_size: int) -> DataLoader[Any]:
        """Batches of this variant's samples (uint8 raw, or augmented on the CPU)."""
        length = batch_size * (args.warmup + args.steps)
        dataset: Dataset[dict[str, Tensor]] = (
            UInt8Samples(args.input_size, length)
            if self.ours
            else AugmentedOnCPU(args.input_size, args.crop, length)
        )
        return DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=args.num_workers,
            pin_memory=self.device.type == 'cuda',
            drop_last=True,
        )

    def device_batch(
        self, args: argparse.Namespace, batch_size: int
    ) -> dict[str, Tensor]:
        """A batch made on the device, in the form this variant's step takes."""
        size = args.input_size if self.ours else args.crop
        dtype = torch.uint8 if self.ours else torch.float32
        out = {}
        for m, c in CHANNELS.items():
            shape = (batch_size, 2 * c, size, size)
            if self.ours:
                out[f'image_{m}'] = torch.randint(
                    0, 256, shape, dtype=dtype, device=self.device
                )
            else:
                out[f'image_{m}'] = torch.rand(shape, device=self.device)
        return out


def throughput(
    trainer: Trainer, args: argparse.Namespace, batch_size: int
) -> dict[str, Any]:
    """Samples/s of training with loading, data-wait share and peak memory."""
    device = trainer.device
    batches: Iterator[dict[str, Tensor]] = iter(trainer.loader(args, batch_size))

    def next_on_device() -> tuple[dict[str, Tensor], float]:
        start = time.perf_counter()
        batch = next(batches)
        waited = time.perf_counter() - start
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}, waited

    for _ in range(args.warmup):
        trainer.step(next_on_device()[0])
    synchronize(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    waited = 0.0
    start = time.perf_counter()
    for _ in range(args.steps):
        batch, wait = next_on_device()
        waited += wait
        trainer.step(batch)
    synchronize(device)
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        'batch_size': batch_size,
        'steps': args.steps,
        'seconds': seconds,
        'samples_per_second': batch_size * args.steps / seconds,
        'data_wait_share': waited / seconds,
    }
    if device.type == 'cuda':
        result['peak_gpu_memory_mib'] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def largest_fitting(
    fits: Callable[[int], bool],
    start: int,
    cap: int,
    granularity: int,
    budget_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Largest batch ``fits`` accepts: doubling from ``start``, then bisection.

    Args:
        fits: Whether a batch size fits in memory (runs a probe).
        start: First size tried.
        cap: Largest size tried.
        granularity: Stop bisecting when the bracket is this narrow.
        budget_s: Stop probing after this many seconds.
        clock: Time source (seconds).

    Returns:
        ``largest_fitting`` (0 if even ``start`` fails), ``smallest_failing``
        (None if none failed), ``probes`` (size → fitted), whether the
        ``cap`` was reached and whether the budget ran out.
    """
    began = clock()
    probes: dict[int, bool] = {}

    def probe(n: int) -> bool:
        probes[n] = fits(n)
        return probes[n]

    lo, hi, n = 0, None, start
    out_of_time = False
    while True:
        if probe(n):
            lo = n
            if n >= cap:
                break
            n = min(2 * n, cap)
        else:
            hi = n
            break
        if clock() - began > budget_s:
            out_of_time = True
            break
    while hi is not None and hi - lo > granularity and not out_of_time:
        mid = (lo + hi) // 2
        if probe(mid):
            lo = mid
        else:
            hi = mid
        out_of_time = clock() - began > budget_s
    return {
        'largest_fitting': lo,
        'smallest_failing': hi,
        'probes': {str(k): v for k, v in sorted(probes.items())},
        'reached_cap': hi is None and lo >= cap,
        'out_of_budget': out_of_time,
        'search_seconds': clock() - began,
    }


def free_memory(device: torch.device) -> None:
    """Return cached blocks after an out-of-memory error or a finished probe."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def out_of_memory(error: RuntimeError) -> bool:
    """Whether ``error`` reports an exhausted device memory.

    Besides :class:`torch.cuda.OutOfMemoryError`, cuBLAS and cuDNN can report a
    failed allocation as a plain RuntimeError.
    """
    text = str(error)
    return isinstance(error, torch.cuda.OutOfMemoryError) or any(
        s in text for s in ('out of memory', 'ALLOC_FAILED')
    )


def max_batch(trainer: Trainer, args: argparse.Namespace) -> dict[str, Any]:
    """Largest batch per GPU of one variant (two steps per probe)."""
    device = trainer.device

    def fits(n: int) -> bool:
        batch: dict[str, Tensor] | None = None
        try:
            batch = trainer.device_batch(args, n)
            for _ in range(2):
                trainer.step(batch)
            synchronize(device)
            ok = True
        except RuntimeError as error:  # OutOfMemoryError is a RuntimeError
            if not out_of_memory(error):
                raise
            ok = False
            if trainer.scaler is not None:
                # A step cut short can leave the scaler mid-step (already
                # unscaled); start a fresh one.
                trainer.scaler = torch.amp.GradScaler(device.type)
        trainer.optimizer.zero_grad(set_to_none=True)
        del batch
        free_memory(device)
        print(
            f'  {trainer.variant} batch {n}: {"fits" if ok else "OOM"}', file=sys.stderr
        )
        return ok

    return largest_fitting(
        fits, args.batch_size, args.max_batch, args.granularity, args.search_budget
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--device', default='auto')
    p.add_argument('--model', default='resnet50')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--crop', type=int, default=224)
    p.add_argument('--input-size', type=int, default=264)
    p.add_argument('--projector-dims', type=int, nargs='+', default=[8192] * 3)
    p.add_argument(
        '--num-workers',
        type=int,
        default=None,
        help='default: the CPUs available to this process minus two (1 to 14)',
    )
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    p.add_argument(
        '--no-search', dest='search', action='store_false', help='skip the max batch'
    )
    p.add_argument('--max-batch', type=int, default=4096)
    p.add_argument('--granularity', type=int, default=32)
    p.add_argument(
        '--search-budget', type=float, default=120, help='seconds per variant'
    )
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads (default: torch)'
    )
    p.add_argument('--tiny', action='store_true', help='seconds-long check (CPU)')
    p.add_argument('--output', help='write the JSON document to this file too')
    p.add_argument('--overwrite', action='store_true', help='replace --output')
    args = p.parse_args(argv)
    if args.tiny:
        args.model, args.batch_size, args.crop, args.input_size = 'resnet18', 2, 32, 40
        args.projector_dims = [32, 32]
        # bf16/fp16 autocast is about 10x slower than float32 on CPUs without
        # half-precision units: as few steps as still run every path (no warm-up,
        # one timed step, one search probe at the cap).
        args.warmup, args.steps = 0, 1
        args.max_batch, args.granularity, args.search_budget = 2, 1, 600.0
    if args.num_workers is None:
        cpus = len(os.sched_getaffinity(0))
        args.num_workers = 1 if args.tiny else max(1, min(cpus - 2, 14))
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = False  # probes of many sizes
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for variant in args.variants:
        print(f'{variant}: throughput at batch {args.batch_size}', file=sys.stderr)
        trainer = Trainer(variant, args, device)
        results[variant] = {'throughput': throughput(trainer, args, args.batch_size)}
        if args.search:
            results[variant]['max_batch'] = max_batch(trainer, args)
        del trainer
        free_memory(device)
    out: dict[str, Any] = {
        'benchmark': 'gpu_decur_vs_reference',
        'config': vars(args),
        'environment': environment(device),
        'pytorch_cuda_alloc_conf': os.environ.get('PYTORCH_CUDA_ALLOC_CONF'),
        'variants': results,
        'seconds_total': time.perf_counter() - started,
    }
    if set(VARIANTS) <= set(results):
        ours, ref = results['ours'], results['reference']
        out['speedup_ours_vs_reference'] = (
            ours['throughput']['samples_per_second']
            / ref['throughput']['samples_per_second']
        )
        if args.search:
            out['max_batch_ratio_ours_vs_reference'] = ours['max_batch'][
                'largest_fitting'
            ] / max(1, ref['max_batch']['largest_fitting'])
    if args.output:
        write_json(args.output, out, overwrite=args.overwrite)
    emit(out)
    return out


if __name__ == '__main__':
    main()
