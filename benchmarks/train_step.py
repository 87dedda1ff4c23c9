"""Train-step throughput and peak memory of DeCURTask on the current device.

Measures one full optimisation step (device-side augmentation of two views per
modality, both encoders and projectors, DeCUR loss, backward, optimizer step) on
random inputs already in [0, 1], i.e. after the data module's normalisation.

Several variants run in the same process, one after the other, from the same
initial weights and inputs, so their numbers are directly comparable:
``fp32`` (baseline), ``bf16`` (``torch.autocast`` with bfloat16 around the
training step, as Lightning's ``precision: bf16-mixed`` does), and either with
``+cl`` (``channels_last=True``: encoder weights in NHWC, so convolutions run NHWC). With
``--verify-steps S`` every variant also trains S steps from identical weights,
inputs and augmentation draws, and reports how far its losses stray from the
first variant's.

Example (GPU, the README's comparison)::

    python -m benchmarks.train_step --model resnet50 --batch-size 64 --size 224 \
        --variants fp32 bf16+cl --verify-steps 5
"""

import argparse
from statistics import median
from typing import Any

import torch

from torchgeo_decur import DeCURTask
from torchgeo_decur.tasks.performance import to_channels_last

from .common import (
    current_rss_mib,
    emit,
    environment,
    peak_rss_mib,
    pick_device,
    time_it,
)

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16}


def parse_variant(name: str) -> tuple[str, bool]:
    """``'bf16+cl'`` → (``'bf16'``, channels_last=True)."""
    precision, _, suffix = name.partition('+')
    if precision not in PRECISIONS or suffix not in ('', 'cl'):
        raise argparse.ArgumentTypeError(
            f'variant {name!r}: expected fp32 or bf16, optionally followed by +cl'
        )
    return precision, suffix == 'cl'


def build_task(args: argparse.Namespace, channels_last: bool) -> DeCURTask:
    """A DeCURTask with seeded (hence identical) initial weights."""
    torch.manual_seed(args.seed)
    task = DeCURTask(
        model=args.model,
        projector_dims=args.projector_dims,
        common_dim=args.common_dim,
        crop_size=args.size,
    )
    if channels_last:
        to_channels_last(task)
    task.log = lambda *a, **k: None  # type: ignore[method-assign]  # no trainer attached
    return task


def make_batch(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Random normalised S1/S2 pairs (two views stacked) on the device."""
    g = torch.Generator(device=device).manual_seed(args.seed)
    n, s = args.batch_size, args.input_size
    return {
        'image_s1': torch.rand(n, 4, s, s, device=device, generator=g),
        'image_s2': torch.rand(n, 26, s, s, device=device, generator=g),
    }


def train_step(
    task: DeCURTask,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, Any],
    precision: str,
) -> float:
    """One optimisation step; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    dtype = PRECISIONS[precision]
    device_type = batch['image_s1'].device.type
    with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
        loss = task.training_step(batch, 0)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def loss_trajectory(
    args: argparse.Namespace,
    device: torch.device,
    precision: str,
    channels_last: bool,
    steps: int,
) -> list[float]:
    """Losses of ``steps`` steps from seeded weights, inputs and augmentations."""
    task = build_task(args, channels_last).to(device)
    optimizer = torch.optim.AdamW(task.parameters(), lr=args.lr)
    batch = make_batch(args, device)
    torch.manual_seed(args.seed + 1)  # augmentation draws
    return [train_step(task, optimizer, batch, precision) for _ in range(steps)]


def max_relative_difference(losses: list[float], reference: list[float]) -> float:
    """Largest ``|a - b| / |b|`` over the steps."""
    return max(
        abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses, reference, strict=True)
    )


def measure(
    args: argparse.Namespace, device: torch.device, precision: str, channels_last: bool
) -> dict[str, Any]:
    """Median step time and peak memory of one variant."""
    task = build_task(args, channels_last).to(device)
    optimizer = torch.optim.AdamW(task.parameters(), lr=args.lr)
    batch = make_batch(args, device)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times = time_it(
        lambda: train_step(task, optimizer, batch, precision),
        device,
        args.warmup,
        args.steps,
    )
    result: dict[str, Any] = {
        'precision': precision,
        'channels_last': channels_last,
        'seconds_per_step_median': median(times),
        'samples_per_second': args.batch_size / median(times),
    }
    if device.type == 'cuda':
        result['peak_gpu_memory_mib'] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--model', default='resnet50')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--size', type=int, default=224, help='crop size in pixels')
    p.add_argument('--input-size', type=int, default=264, help='stored patch size')
    p.add_argument('--projector-dims', type=int, nargs='+', default=[8192, 8192, 8192])
    p.add_argument('--common-dim', type=int, default=None, help='default: 87.5 %% of K')
    p.add_argument('--device', default='auto')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument(
        '--variants',
        nargs='+',
        default=['fp32'],
        help='fp32, bf16, fp32+cl, bf16+cl (cl: channels_last); the first is the '
        'baseline of the ratios',
    )
    p.add_argument(
        '--verify-steps',
        type=int,
        default=0,
        help='train this many steps per variant and compare the losses with the '
        'first variant',
    )
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    if args.common_dim is None:
        args.common_dim = args.projector_dims[-1] * 7 // 8
    variants = {name: parse_variant(name) for name in args.variants}

    device = pick_device(args.device)
    rss_before = current_rss_mib()
    results = {
        name: measure(args, device, precision, cl)
        for name, (precision, cl) in variants.items()
    }
    baseline = args.variants[0]
    for result in results.values():
        result['speedup_vs_baseline'] = (
            result['samples_per_second'] / results[baseline]['samples_per_second']
        )
    if args.verify_steps:
        losses = {
            name: loss_trajectory(args, device, precision, cl, args.verify_steps)
            for name, (precision, cl) in variants.items()
        }
        for name, result in results.items():
            result['losses'] = losses[name]
            result['max_rel_loss_diff_vs_baseline'] = max_relative_difference(
                losses[name], losses[baseline]
            )
    out: dict[str, Any] = {
        'benchmark': 'train_step',
        'config': vars(args),
        'environment': environment(device),
        'baseline': baseline,
        'variants': results,
    }
    if device.type != 'cuda':
        # One process for all variants: the peak of the most demanding one.
        out['peak_rss_increase_mib'] = peak_rss_mib() - rss_before
    emit(out)


if __name__ == '__main__':
    main()
