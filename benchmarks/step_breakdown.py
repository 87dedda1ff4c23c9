"""Where one DeCUR pretraining step goes, phase by phase.

Runs ``--warmup`` untimed and ``--steps`` timed S1 + S2 pretraining steps of a
:class:`~torchgeo_decur.DeCURTask` and splits each into:

``data_wait``
    waiting for the next batch from the DataLoader (host clock);
``h2d``
    copying the batch to the device;
``normalize``
    the data module's on-device scaling (what Lightning runs in
    ``on_after_batch_transfer``; zero for already normalised synthetic data);
``augment_<m>``
    the kornia pipeline of modality ``m`` (crop, flips, photometric ops), both
    views; each operation's own time is reported under ``augment_ops``;
``augment_other``
    the rest of :meth:`~torchgeo_decur.tasks.base.MultimodalSSLTask.augment`
    (splitting the stacked views, dtype conversion);
``forward``
    both encoders and projectors on all four views
    (:meth:`~torchgeo_decur.tasks.base.MultimodalSSLTask.embed`);
``loss``
    :meth:`~torchgeo_decur.DeCURTask.compute_loss`;
``backward`` and ``optimizer``
    ``loss.backward()``; AdamW ``step()`` and ``zero_grad()``.

The step is the one :meth:`training_step` runs, called phase by phase; only
Lightning's logging and the collapse monitor are left out. On a CPU every phase
is timed with ``time.perf_counter`` around the call (after waiting for queued
device work); on a GPU with CUDA events, so the phases are the device's timeline.
Each step ends with a device synchronisation, so the host's data wait does not
overlap device work and the phases add up to the step: ``unaccounted`` is the
difference (host time between the timers).

Data (``--data``):

* ``synthetic``: a DataLoader over a few preloaded random samples already in
  [0, 1] (float32, two views stacked on the channel axis, ``--input-size`` px):
  data wait is the DataLoader's own cost (collation, worker transfer);
* ``device``: one random batch made on the device once; no data wait or copy
  (the compute-only step, as ``benchmarks/train_step.py`` measures);
* ``ssl4eo``: :class:`~torchgeo_decur.datamodules.SSL4EOS12PairsDataModule`
  reading the GeoTIFFs under ``--root``;
* ``ssl4eo-cache``: the same data module reading the cache ``--cache`` written
  by ``torchgeo-decur cache-ssl4eo-s12`` (``uint8`` caches are read with
  ``normalization='decur_uint8'``, as the data module requires).

Loaders sample with replacement, so a small dataset (the bundled sample) gives
as many batches as needed.

The table goes to stderr, the JSON document to stdout (and to ``--output``).

Example (CPU, the quickstart's model at the paper's crop)::

    python -m benchmarks.step_breakdown --device cpu --model resnet18 \
        --batch-size 8 --crop 224 --data synthetic --steps 5 --warmup 1
"""

import argparse
import contextlib
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from statistics import mean, median
from typing import Any

import kornia.augmentation as K
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from torchgeo_decur import DeCURTask

from .common import (
    CycledSamples,
    current_rss_mib,
    emit,
    environment,
    peak_rss_mib,
    pick_device,
    synchronize,
    write_json,
)

MODALITIES = ('s1', 's2')
PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class PhaseTimer:
    """Accumulates named time intervals of one step.

    On CUDA each interval is a pair of CUDA events (device timeline, no
    synchronisation inside the step); elsewhere the host clock after waiting for
    queued device work. Call :meth:`collect` after the step's final
    synchronisation.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == 'cuda'
        self._open: dict[str, Any] = {}
        self._closed: list[tuple[str, Any, Any]] = []

    def _mark(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        synchronize(self.device)
        return time.perf_counter()

    def start(self, name: str) -> None:
        """Open interval ``name``."""
        self._open[name] = self._mark()

    def stop(self, name: str) -> None:
        """Close interval ``name`` (several intervals of a name add up)."""
        self._closed.append((name, self._open.pop(name), self._mark()))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the body as interval ``name``."""
        self.start(name)
        yield
        self.stop(name)

    def collect(self) -> dict[str, float]:
        """Seconds per name since the last call; the device must be idle."""
        out: dict[str, float] = defaultdict(float)
        for name, begin, end in self._closed:
            if self.cuda:
                out[name] += begin.elapsed_time(end) / 1000
            else:
                out[name] += end - begin
        self._closed = []
        return dict(out)


def time_augmentation_ops(task: DeCURTask, timer: PhaseTimer) -> list[Any]:
    """Time every kornia operation of every modality's pipeline.

    Forward hooks open and close an interval ``aug/<m>/<Operation>`` around each
    operation of the geometric and photometric parts, so the task's own
    :meth:`augment` runs unchanged.

    Returns:
        The hook handles (call ``remove()`` on each to detach).
    """
    handles = []
    for m in task.modalities:
        aug = task.augmentation(m)
        for op in [*aug.geometric, *aug.photometric]:
            name = f'aug/{m}/{type(op).__name__}'

            def pre(
                module: nn.Module, inputs: Any, name: str = name
            ) -> None:  # default binds the current name
                timer.start(name)

            def post(
                module: nn.Module, inputs: Any, output: Any, name: str = name
            ) -> None:
                timer.stop(name)

            handles.append(op.register_forward_pre_hook(pre))
            handles.append(op.register_forward_hook(post))
    return handles


def set_crop_mode(task: DeCURTask, mode: str) -> None:
    """Switch every RandomResizedCrop of the task to kornia's ``cropping_mode``.

    ``'slice'`` (kornia's default, what the task builds) resizes each sample's
    crop with its own ``interpolate`` call; ``'resample'`` warps all samples in
    one ``grid_sample`` with the same boxes (pixels equal up to float rounding).
    The flags are set as kornia's constructor sets them, so the module behaves
    as one built with ``cropping_mode=mode``.
    """
    for m in task.modalities:
        for op in task.augmentation(m).geometric:
            if isinstance(op, K.RandomResizedCrop):
                op.flags['cropping_mode'] = mode
                op._compute_matrix_lazily = mode == 'slice'


def preloaded_samples(
    channels: Mapping[str, int], size: int, length: int, distinct: int = 4
) -> CycledSamples:
    """A few random samples in [0, 1] (two stacked views per modality), in turn."""
    g = torch.Generator().manual_seed(0)
    samples = [
        {
            f'image_{m}': torch.rand(2 * c, size, size, generator=g)
            for m, c in channels.items()
        }
        for _ in range(distinct)
    ]
    return CycledSamples(samples, length)


def build_data(
    args: argparse.Namespace, device: torch.device, batches: int
) -> tuple[Iterator[dict[str, Tensor]], Callable[[Any], Any], dict[str, int]]:
    """The batch source, the on-device normalisation, and the channel counts.

    Returns:
        An iterator of batches (on the host, or on the device for
        ``--data device``), a function normalising a batch on the device, and
        ``{modality: channels}``.

    Raises:
        ValueError: If ``--root`` (or ``--cache``) is missing for the SSL4EO
            sources.
    """
    identity: Callable[[Any], Any] = lambda batch: batch  # noqa: E731
    channels = {'s1': 2, 's2': 13}
    n, s = args.batch_size, args.input_size
    if args.data == 'device':
        g = torch.Generator(device=device).manual_seed(args.seed)
        batch = {
            f'image_{m}': torch.rand(n, 2 * c, s, s, device=device, generator=g)
            for m, c in channels.items()
        }
        return iter([batch] * batches), identity, channels
    dataset: Dataset[dict[str, Tensor]]
    if args.data == 'synthetic':
        dataset = preloaded_samples(channels, s, n * batches)
        collate = None
        normalize = identity
    else:
        # Imported here: only these sources need the data module.
        from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
        from torchgeo_decur.datasets.ssl4eo_s12_cache import read_manifest

        if args.root is None:
            raise ValueError(f'--data {args.data} needs --root')
        kwargs: dict[str, Any] = {}
        if args.data == 'ssl4eo-cache':
            if args.cache is None:
                raise ValueError('--data ssl4eo-cache needs --cache')
            kwargs['cache'] = args.cache
            if read_manifest(args.cache)['encoding'] == 'uint8':
                kwargs['normalization'] = 'decur_uint8'
        dm = SSL4EOS12PairsDataModule(
            root=args.root,
            batch_size=n,
            num_workers=args.num_workers,
            size=s,
            **kwargs,
        )
        dm.setup('fit')
        if dm.dataset is None:
            raise ValueError(f'no SSL4EO-S12 dataset under {args.root!r}')
        dataset = dm.dataset
        collate = dm.collate_fn
        normalize = dm.aug.to(device)
        channels = {'s1': 2, 's2': dataset[0]['image_s2'].shape[0] // 2}
    sampler = RandomSampler(dataset, replacement=True, num_samples=n * batches)  # type: ignore[arg-type]
    loader = DataLoader(
        dataset,
        batch_size=n,
        sampler=sampler,
        num_workers=args.num_workers,
        collate_fn=collate,
        pin_memory=args.pin_memory and device.type == 'cuda',
        drop_last=True,
    )
    return iter(loader), normalize, channels


def build_task(args: argparse.Namespace, channels: Mapping[str, int]) -> DeCURTask:
    """A DeCURTask with seeded initial weights (stable constructor arguments only)."""
    torch.manual_seed(args.seed)
    return DeCURTask(
        modalities=MODALITIES,
        in_channels=dict(channels),
        model=args.model,
        weights=None,
        projector_dims=args.projector_dims,
        common_dim=args.common_dim,
        augmentations={'s1': 'sar', 's2': 'optical'},
        crop_size=args.crop,
        lr=args.lr,
    )


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Every tensor of ``batch`` on ``device`` (asynchronous from pinned memory)."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v
        for k, v in batch.items()
    }


def one_step(
    task: DeCURTask,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[dict[str, Tensor]],
    normalize: Callable[[Any], Any],
    timer: PhaseTimer,
    args: argparse.Namespace,
    device: torch.device,
) -> tuple[float, float, dict[str, float]]:
    """One pretraining step, phase by phase.

    Returns:
        Wall-clock seconds of the whole step, seconds waiting for data, and the
        seconds of every timed interval.
    """
    dtype = PRECISIONS[args.precision]
    synchronize(device)
    begin = time.perf_counter()
    batch = next(batches)
    data_wait = time.perf_counter() - begin
    with timer.phase('h2d'):
        batch = to_device(batch, device)
    with timer.phase('normalize'):
        batch = normalize(batch)
    # Lightning's precision plugin wraps the whole training_step in autocast.
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        with timer.phase('augment'):
            views = task.augment(task.split_views(batch))
        with timer.phase('forward'):
            embeddings = {}
            for m in task.modalities:
                xs = views[m]
                if args.channels_last:
                    xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]
                embeddings[m] = [task.embed(m, x)[1] for x in xs]
        with timer.phase('loss'):
            loss = task.compute_loss(embeddings)['loss']
    with timer.phase('backward'):
        loss.backward()
    with timer.phase('optimizer'):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    total = time.perf_counter() - begin
    return total, data_wait, timer.collect()


def summarise(
    steps: list[tuple[float, float, dict[str, float]]], modalities: tuple[str, ...]
) -> dict[str, Any]:
    """Per-phase statistics (ms) of the timed steps and their share of the step."""
    rows: dict[str, list[float]] = defaultdict(list)
    ops: dict[str, list[float]] = defaultdict(list)
    for total, data_wait, intervals in steps:
        phases = {'data_wait': data_wait}
        phases['h2d'] = intervals.get('h2d', 0.0)
        phases['normalize'] = intervals.get('normalize', 0.0)
        per_modality = {
            m: sum(v for k, v in intervals.items() if k.startswith(f'aug/{m}/'))
            for m in modalities
        }
        for m in modalities:
            phases[f'augment_{m}'] = per_modality[m]
        phases['augment_other'] = intervals['augment'] - sum(per_modality.values())
        for name in ('forward', 'loss', 'backward', 'optimizer'):
            phases[name] = intervals[name]
        phases['unaccounted'] = total - sum(phases.values())
        phases['total'] = total
        for name, seconds in phases.items():
            rows[name].append(seconds * 1000)
        for name, seconds in intervals.items():
            if name.startswith('aug/'):
                ops[name.removeprefix('aug/')].append(seconds * 1000)
    total_mean = mean(rows['total'])
    table = {
        name: {
            'mean_ms': mean(values),
            'median_ms': median(values),
            'share': mean(values) / total_mean,
        }
        for name, values in rows.items()
    }
    augment = sum(table[f'augment_{m}']['mean_ms'] for m in modalities)
    augment += table['augment_other']['mean_ms']
    encoders = sum(table[k]['mean_ms'] for k in ('forward', 'backward'))
    return {
        'phases': table,
        'phase_sum_ms': sum(
            v['mean_ms'] for k, v in table.items() if k not in ('total', 'unaccounted')
        ),
        'augment_ops_mean_ms': {name: mean(values) for name, values in ops.items()},
        'augment_share_of_step': augment / total_mean,
        'augment_vs_encoder_passes': augment / encoders,
    }


def format_table(result: dict[str, Any]) -> str:
    """Human-readable table of the phases and the augmentation operations."""
    cfg = result['config']
    lines = [
        f'{cfg["model"]}, batch {cfg["batch_size"]}, crop {cfg["crop"]} px, '
        f'{cfg["precision"]}{" + channels_last" if cfg["channels_last"] else ""}, '
        f'data {cfg["data"]}, {result["environment"]["device"]}: '
        f'{result["samples_per_second"]:.1f} samples/s',
        f'{"phase":<16}{"mean ms":>12}{"median ms":>12}{"share":>9}',
    ]
    for name, row in result['phases'].items():
        lines.append(
            f'{name:<16}{row["mean_ms"]:>12.2f}{row["median_ms"]:>12.2f}'
            f'{100 * row["share"]:>8.1f}%'
        )
    lines.append(f'{"augmentation op":<32}{"mean ms":>12}')
    for name, ms in result['augment_ops_mean_ms'].items():
        lines.append(f'{name:<32}{ms:>12.2f}')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--model', default='resnet50', help='timm name')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--crop', type=int, default=224, help='crop size in pixels')
    p.add_argument(
        '--input-size', type=int, default=264, help='stored patch size in pixels'
    )
    p.add_argument('--projector-dims', type=int, nargs='+', default=[8192] * 3)
    p.add_argument('--common-dim', type=int, default=None, help='default: 7/8 of K')
    p.add_argument('--device', default='auto', help='cpu, cuda or auto')
    p.add_argument('--precision', choices=sorted(PRECISIONS), default='fp32')
    p.add_argument(
        '--channels-last',
        action='store_true',
        help='encoders and their inputs in NHWC (the task option channels_last)',
    )
    p.add_argument(
        '--data',
        choices=['synthetic', 'device', 'ssl4eo', 'ssl4eo-cache'],
        default='synthetic',
    )
    p.add_argument('--root', help='SSL4EO-S12 root (ssl4eo, ssl4eo-cache)')
    p.add_argument('--cache', help='cache directory (ssl4eo-cache)')
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument('--pin-memory', action='store_true', help='pin batches (CUDA)')
    p.add_argument(
        '--crop-mode',
        choices=['slice', 'resample'],
        default='slice',
        help="kornia RandomResizedCrop cropping_mode ('slice': the task's default)",
    )
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads (default: torch)'
    )
    p.add_argument('--output', help='also write the JSON document to this file')
    p.add_argument('--overwrite', action='store_true', help='replace --output')
    args = p.parse_args(argv)
    if args.common_dim is None:
        args.common_dim = args.projector_dims[-1] * 7 // 8
    if args.steps < 1:
        p.error('--steps must be at least 1')
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    device = pick_device(args.device)
    rss_before = current_rss_mib()
    batches, normalize, channels = build_data(args, device, args.warmup + args.steps)
    task = build_task(args, channels).to(device)
    if args.channels_last:
        task.backbones.to(memory_format=torch.channels_last)
    set_crop_mode(task, args.crop_mode)
    task.train()
    optimizer = torch.optim.AdamW(task.parameters(), lr=args.lr)
    timer = PhaseTimer(device)
    hooks = time_augmentation_ops(task, timer)
    torch.manual_seed(args.seed + 1)  # augmentation draws
    for _ in range(args.warmup):
        one_step(task, optimizer, batches, normalize, timer, args, device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    steps = [
        one_step(task, optimizer, batches, normalize, timer, args, device)
        for _ in range(args.steps)
    ]
    for handle in hooks:
        handle.remove()
    summary = summarise(steps, task.modalities)
    result: dict[str, Any] = {
        'benchmark': 'step_breakdown',
        'config': vars(args),
        'environment': environment(device),
        'timing': 'cuda events' if device.type == 'cuda' else 'perf_counter',
        'in_channels': channels,
        'samples_per_second': args.batch_size
        / (summary['phases']['total']['mean_ms'] / 1000),
        **summary,
    }
    if device.type == 'cuda':
        result['peak_gpu_memory_mib'] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        result['peak_rss_increase_mib'] = peak_rss_mib() - rss_before
    print(format_table(result), file=sys.stderr)
    if args.output:
        write_json(args.output, result, overwrite=args.overwrite)
    emit(result)
    return result


if __name__ == '__main__':
    main()
