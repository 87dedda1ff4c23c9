"""Train-step throughput and peak memory of DeCURTask on the current device.

Measures one full optimisation step (device-side augmentation of two views per
modality, both encoders and projectors, DeCUR loss, backward, optimizer step) on
random inputs already in [0, 1], i.e. after the data module's normalisation.

Example::

    python -m benchmarks.train_step --model resnet50 --batch-size 64 --size 224
"""

import argparse
from statistics import median

import torch

from torchgeo_decur import DeCURTask

from .common import (
    current_rss_mib,
    emit,
    environment,
    peak_rss_mib,
    pick_device,
    time_it,
)


def main() -> None:
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
    args = p.parse_args()

    device = pick_device(args.device)
    k = args.projector_dims[-1]
    common = args.common_dim if args.common_dim is not None else k * 7 // 8
    task = DeCURTask(
        model=args.model,
        projector_dims=args.projector_dims,
        common_dim=common,
        crop_size=args.size,
        gather_distributed=False,
    ).to(device)
    task.log = lambda *a, **k: None  # type: ignore[method-assign]  # no trainer attached
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-4)
    g = torch.Generator(device=device).manual_seed(0)
    n, s = args.batch_size, args.input_size
    batch = {
        'image_s1': torch.rand(n, 4, s, s, device=device, generator=g),
        'image_s2': torch.rand(n, 26, s, s, device=device, generator=g),
    }

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = task.training_step(batch, 0)
        loss.backward()
        optimizer.step()

    rss_before = current_rss_mib()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = time_it(step, device, args.warmup, args.steps)
    result = {
        'benchmark': 'train_step',
        'config': vars(args) | {'common_dim': common},
        'environment': environment(device),
        'seconds_per_step_median': median(times),
        'samples_per_second': n / median(times),
    }
    if device.type == 'cuda':
        result['peak_gpu_memory_mib'] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        result['peak_rss_increase_mib'] = peak_rss_mib() - rss_before
    emit(result)


if __name__ == '__main__':
    main()
