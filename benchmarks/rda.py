"""Cost of residual deformable attention: ResNet-50-RDA against plain ResNet-50.

Times one forward + backward pass (pooled features, sum of squares as the loss) of
timm ``resnet50`` and ``resnet50_rda`` on random images, and of the two attention
blocks alone on the layer3 / layer4 maps of that input size. Memory: parameters,
activations saved for the backward pass (counted with autograd's saved-tensor hooks,
so it is the same on every device), and, on CUDA, the peak allocated memory of each
pass. Also checks the layer3 block in float32 on the device against float64 on the
CPU (output and bias-table gradient). Prints one JSON document.

Example::

    python -m benchmarks.rda --batch-size 8 --size 224 --device cpu
    python -m benchmarks.rda --batch-size 64 --size 224 --device cuda --precision 16-mixed
"""

import argparse
import contextlib
from collections.abc import Callable, Iterator
from statistics import median
from typing import Any

import timm
import torch
from torch import Tensor, nn

import torchgeo_decur.models  # noqa: F401  (registers resnet50_rda with timm)
from torchgeo_decur.models import LAYER3_SETTINGS, LAYER4_SETTINGS, DeformableAttention

from .common import emit, environment, pick_device, synchronize, time_it

DTYPES = {'16-mixed': torch.float16, 'bf16-mixed': torch.bfloat16}


@contextlib.contextmanager
def count_saved(totals: dict[str, int], module: nn.Module) -> Iterator[None]:
    """Add the bytes of distinct non-parameter tensors saved for backward."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen: set[tuple[int, int]] = set()

    def pack(t: Tensor) -> Tensor:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen and key[0] not in params:
            seen.add(key)
            totals['bytes'] += key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield


def measure(
    name: str,
    module: nn.Module,
    x: Tensor,
    device: torch.device,
    precision: str,
    warmup: int,
    repeats: int,
) -> dict[str, Any]:
    """Time and memory of forward + backward of ``module`` on ``x``."""
    module.to(device).train()

    def step(hooks: contextlib.AbstractContextManager[None]) -> None:
        module.zero_grad(set_to_none=True)
        with hooks, autocast(device, precision):
            out = module(x)
        out.float().square().sum().backward()

    def timed() -> None:
        step(contextlib.nullcontext())

    times = time_it(timed, device, warmup, repeats)
    saved = {'bytes': 0}
    if device.type == 'cuda':
        module.zero_grad(set_to_none=True)
        synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    step(count_saved(saved, module))
    result: dict[str, Any] = {
        'name': name,
        'parameters': sum(p.numel() for p in module.parameters()),
        'parameter_mib': sum(p.numel() * p.element_size() for p in module.parameters())
        / 2**20,
        'seconds_median': median(times),
        'seconds_all': times,
        'saved_activations_mib': saved['bytes'] / 2**20,
    }
    if device.type == 'cuda':
        result['peak_allocated_above_start_mib'] = (
            torch.cuda.max_memory_allocated(device) - base
        ) / 2**20
    module.zero_grad(set_to_none=True)
    module.cpu()
    return result


def autocast(
    device: torch.device, precision: str
) -> contextlib.AbstractContextManager[Any]:
    """Mixed-precision context for ``precision`` (a Lightning precision string)."""
    if precision == '32':
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def device_parity(device: torch.device, h: int, w: int) -> dict[str, float]:
    """Max abs difference of a layer3 block on ``device`` vs float64 on the CPU.

    Covers the fused attention kernel the device picks, including the gradient of
    the position-bias table that enters it as an additive mask.
    """
    torch.manual_seed(0)
    block = DeformableAttention(**LAYER3_SETTINGS)
    x = torch.randn(2, 1024, h, w)
    results = {}
    for name, dev, dtype in (('device', device, torch.float32), ('cpu64', None, None)):
        b = block.to(dev or 'cpu', dtype or torch.float64)
        b.zero_grad()
        y = b(x.to(dev or 'cpu', dtype or torch.float64))
        y.square().sum().backward()
        results[name] = (y.detach().cpu().double(), b.rpe_table.grad.cpu().double())
    (y_dev, g_dev), (y_ref, g_ref) = results['device'], results['cpu64']
    return {
        'max_abs_diff_output': float((y_dev - y_ref).abs().max()),
        'max_abs_output': float(y_ref.abs().max()),
        'max_abs_diff_rpe_grad': float((g_dev - g_ref).abs().max()),
        'max_abs_rpe_grad': float(g_ref.abs().max()),
    }


def halve(size: int, times: int) -> int:
    """Side length after ``times`` stride-2 layers with 'same' padding."""
    for _ in range(times):
        size = -(-size // 2)
    return size


class Residual(nn.Module):
    """x + block(x), the way the encoder uses each attention block."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        """X + block(x)."""
        out: Tensor = x + self.block(x)
        return out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; ``argv`` defaults to the command line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--size', type=int, default=224, help='image side in pixels')
    p.add_argument('--in-chans', type=int, default=13)
    p.add_argument(
        '--precision', choices=['32', '16-mixed', 'bf16-mixed'], default='32'
    )
    p.add_argument('--device', default='auto')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--repeats', type=int, default=3)
    args = p.parse_args(argv)

    device = pick_device(args.device)
    torch.manual_seed(0)
    n, s = args.batch_size, args.size
    images = torch.rand(n, args.in_chans, s, s, device=device)
    # Every stride-2 step of the ResNet rounds up: layer3 is 4, layer4 5 halvings.
    h3 = w3 = halve(s, 4)
    h4 = w4 = halve(s, 5)

    def run(name: str, make: Callable[[], nn.Module], x: Tensor) -> dict[str, Any]:
        return measure(
            name, make(), x, device, args.precision, args.warmup, args.repeats
        )

    plain = run(
        'resnet50',
        lambda: timm.create_model('resnet50', in_chans=args.in_chans, num_classes=0),
        images,
    )
    full = run(
        'resnet50_rda',
        lambda: timm.create_model(
            'resnet50_rda', in_chans=args.in_chans, num_classes=0
        ),
        images,
    )
    l3 = run(
        'da_l3 (residual)',
        lambda: Residual(DeformableAttention(**LAYER3_SETTINGS)),
        torch.randn(n, 1024, h3, w3, device=device),
    )
    l4 = run(
        'da_l4 (residual)',
        lambda: Residual(DeformableAttention(**LAYER4_SETTINGS)),
        torch.randn(n, 2048, h4, w4, device=device),
    )
    result: dict[str, Any] = {
        'benchmark': 'rda',
        'config': vars(args),
        'environment': environment(device),
        'feature_maps': {'layer3': [h3, w3], 'layer4': [h4, w4]},
        'layer3_block_float32_vs_cpu_float64': device_parity(device, h3, w3),
        'models': [plain, full, l3, l4],
        'relative_to_resnet50': {
            'time_resnet50_rda': full['seconds_median'] / plain['seconds_median'],
            'time_two_blocks_alone': (l3['seconds_median'] + l4['seconds_median'])
            / plain['seconds_median'],
            'parameters_resnet50_rda': full['parameters'] / plain['parameters'],
            'saved_activations_resnet50_rda': full['saved_activations_mib']
            / plain['saved_activations_mib'],
        },
    }
    if device.type == 'cuda':
        result['relative_to_resnet50']['peak_memory_resnet50_rda'] = (
            full['peak_allocated_above_start_mib']
            / plain['peak_allocated_above_start_mib']
        )
    emit(result)


if __name__ == '__main__':
    main()
