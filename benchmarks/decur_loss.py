"""DeCUR loss: forward+backward time and peak memory, Gram form vs K x K form.

Compares, at embedding size K and batch sizes N:

* ``reference``: a direct transcription of how the DeCUR reference code computes
  the loss (written here, as the baseline): a BatchNorm1d(affine=False) normalises
  every embedding (z1_1 twice, once per term that uses it), three K x K
  cross-correlation matrices are formed, and the diagonals and copied
  off-diagonals are squared and summed;
* ``direct``: :func:`torchgeo_decur.losses.decur_loss` with ``method='direct'``;
* ``gram``: ``method='gram'`` (N x N Gram matrices, no K x K tensor);
* ``auto``: ``method='auto'`` (what DeCURTask uses: the Gram form when N < K, else the direct one).

Every (method, N) runs in a fresh subprocess. Peak memory on CPU is the rise of the
process's resident-set high-water mark (``ru_maxrss``) over the resident size once
the inputs exist: the OS's own record of the most physical memory the
forward+backward pass held at once, including autograd's saved tensors and every
temporary. (The torch profiler lists allocations per operator but does not give
the live-set peak directly, and a fresh process keeps one configuration's freed
memory from hiding the next one's peak.) On CUDA it is
``torch.cuda.max_memory_allocated`` over the allocation after the inputs.

Equality: in a separate subprocess per N, the components and the gradients of the
total w.r.t. the four inputs (fp32) are compared with the reference transcription.

Example (the README table)::

    python -m benchmarks.decur_loss --device cpu --k 8192 --n 64 256 1024 4096
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from statistics import median
from typing import Any

import torch
from torch import Tensor, nn

from torchgeo_decur.losses import decur_loss

from .common import current_rss_mib, emit, environment, pick_device, time_it

METHODS = ('reference', 'direct', 'gram', 'auto')
COMPONENTS = ('total', 'intra1', 'intra2', 'common', 'unique')


def _off_diagonal(c: Tensor) -> Tensor:
    """Copy of the off-diagonal entries of a square matrix (reference style)."""
    k = c.shape[0]
    return c.flatten()[:-1].view(k - 1, k + 1)[:, 1:].flatten()


def reference_transcription(
    z1_1: Tensor,
    z1_2: Tensor,
    z2_1: Tensor,
    z2_2: Tensor,
    common_dim: int,
    lambd: float = 0.0051,
) -> dict[str, Tensor]:
    """The DeCUR loss computed like the reference implementation does.

    Three K x K correlation matrices, each from freshly batch-normalised
    embeddings (BatchNorm1d without affine parameters, train mode); diagonals and
    off-diagonal copies squared and summed; weighting
    ``(intra1 + intra2 + (common + unique) / 2) / 3``. Single process, so the
    correlation is divided by the batch size N.

    Args:
        z1_1: Modality 1, view 1, shape (N, K).
        z1_2: Modality 1, view 2, shape (N, K).
        z2_1: Modality 2, view 1, shape (N, K).
        z2_2: Modality 2, view 2, shape (N, K).
        common_dim: Number of common dimensions.
        lambd: Off-diagonal weight.

    Returns:
        The loss components keyed like :class:`~torchgeo_decur.losses.decur.DeCURLossOutput`.
    """
    n, k = z1_1.shape
    bn = nn.BatchNorm1d(k, affine=False).to(z1_1.device)

    def barlow(c: Tensor, target: float) -> Tensor:
        on_diag = torch.diagonal(c).add(-target).pow_(2).sum()
        off_diag = _off_diagonal(c).pow_(2).sum()
        return on_diag + lambd * off_diag

    intra = []
    for a, b in ((z1_1, z1_2), (z2_1, z2_2)):
        c = bn(a).T @ bn(b)
        c.div_(n)
        intra.append(barlow(c, 1.0))
    c = bn(z1_1).T @ bn(z2_1)
    c.div_(n)
    common = barlow(c[:common_dim, :common_dim], 1.0)
    unique = barlow(c[common_dim:, common_dim:], 0.0)
    total = (intra[0] + intra[1] + (common + unique) / 2) / 3
    return {
        'total': total,
        'intra1': intra[0],
        'intra2': intra[1],
        'common': common,
        'unique': unique,
    }


def loss_fn(method: str, common_dim: int) -> Any:
    """``f(z1_1, z1_2, z2_1, z2_2) -> components`` for one benchmarked method."""
    if method == 'reference':
        return lambda *z: reference_transcription(*z, common_dim=common_dim)

    def ours(*z: Tensor) -> dict[str, Tensor]:
        out = decur_loss(*z, common_dim=common_dim, method=method)  # type: ignore[arg-type]
        return out._asdict()  # type: ignore[no-any-return]

    return ours


def make_inputs(
    n: int, k: int, device: torch.device, seed: int = 0, chunk: int = 64
) -> list[Tensor]:
    """Four correlated (N, K) float32 embeddings that require gradients.

    Written ``chunk`` rows at a time so that building them needs no full-size
    temporaries: the memory high-water mark afterwards is the inputs themselves.
    """
    g = torch.Generator(device=device).manual_seed(seed)
    z = [torch.empty(n, k, device=device) for _ in range(4)]
    with torch.no_grad():
        for start in range(0, n, chunk):
            rows = slice(start, min(n, start + chunk))
            shape = (rows.stop - rows.start, k)
            base = torch.randn(shape, device=device, generator=g)
            for i, t in enumerate(z):
                noise = torch.randn(shape, device=device, generator=g)
                t[rows] = base + 0.5 * noise + 0.1 * i
    return [t.requires_grad_() for t in z]


def forward_backward(fn: Any, z: list[Tensor]) -> dict[str, Tensor]:
    """One forward+backward pass of the total; returns the components."""
    for t in z:
        t.grad = None
    out: dict[str, Tensor] = fn(*z)
    out['total'].backward()
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Time and peak memory of one method at one N (run in a fresh process)."""
    device = pick_device(args.device)
    fn = loss_fn(args.method, args.common_dim)
    # Warm up the kernels and thread pools on a tiny problem so their one-time
    # buffers are not charged to the measured pass.
    forward_backward(
        loss_fn(args.method, 8),
        make_inputs(8, 16, device, seed=1),
    )
    z = make_inputs(args.n[0], args.k, device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2**20
    else:
        before = current_rss_mib()
        high_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    forward_backward(fn, z)
    result: dict[str, Any] = {}
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        result['peak_memory_mib'] = peak / 2**20 - before
    else:
        high = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result['peak_memory_mib'] = high - before
        # If the pass never exceeded the earlier high-water mark, its peak is only
        # bounded from above; flag it instead of reporting a wrong number.
        result['peak_memory_exact'] = high > high_before
    cpu_times: list[float] = []

    def timed_pass() -> None:
        start = time.process_time()
        forward_backward(fn, z)
        cpu_times.append(time.process_time() - start)

    times = time_it(timed_pass, device, 0, args.repeats)
    result['seconds'] = times
    result['seconds_median'] = median(times)
    if device.type == 'cpu':
        # CPU seconds of all threads: what the pass costs, even when other
        # processes compete for the cores and stretch the wall-clock time.
        result['cpu_seconds'] = cpu_times
        result['cpu_seconds_median'] = median(cpu_times)
    return result


def relative_error(got: Tensor, want: Tensor) -> float:
    """``max |got - want| / max |want|`` in float64."""
    got, want = got.double(), want.double()
    scale = want.abs().max().clamp_min(torch.finfo(torch.float64).tiny)
    return float((got - want).abs().max() / scale)


def check(args: argparse.Namespace) -> dict[str, Any]:
    """Compare every method's components and input gradients with the baseline."""
    device = pick_device(args.device)
    n = args.n[0]
    results: dict[str, Any] = {}
    z = make_inputs(n, args.k, device, seed=2)
    ref = forward_backward(loss_fn('reference', args.common_dim), z)
    ref_values = {name: ref[name].detach() for name in COMPONENTS}
    ref_grads = [t.grad.clone() for t in z]  # type: ignore[union-attr]
    del ref
    for method in METHODS[1:]:
        out = forward_backward(loss_fn(method, args.common_dim), z)
        values = {
            name: relative_error(out[name].detach(), ref_values[name])
            for name in COMPONENTS
        }
        grads = [
            relative_error(t.grad, g)  # type: ignore[arg-type]
            for t, g in zip(z, ref_grads, strict=True)
        ]
        results[method] = {
            'value_rel_error': values,
            'max_value_rel_error': max(values.values()),
            'grad_rel_error': max(grads),
            'values_equal': max(values.values()) <= args.value_rtol,
            'grads_equal': max(grads) <= args.grad_rtol,
        }
    return results


def subprocess_json(argv: list[str], in_process: bool = False) -> dict[str, Any]:
    """Run this module with ``argv`` in a fresh interpreter and parse its JSON.

    With ``in_process`` the worker runs in this process instead: on CUDA the
    peak counter is reset per configuration, so the figures hold; on the CPU the
    process-wide ``ru_maxrss`` then includes what earlier runs left behind.
    """
    if in_process:
        args = _parser().parse_args(argv)
        _finish_args(args)
        return measure(args) if args.worker == 'measure' else check(args)
    out = subprocess.run(
        [sys.executable, '-m', 'benchmarks.decur_loss', *argv],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _parser() -> argparse.ArgumentParser:
    """Command-line arguments of the benchmark (and of its workers)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--k', type=int, default=8192, help='embedding size K')
    p.add_argument('--n', type=int, nargs='+', default=[64, 256, 1024, 4096])
    p.add_argument('--common-dim', type=int, default=None, help='default: 87.5 %% of K')
    p.add_argument('--device', default='auto')
    p.add_argument('--repeats', type=int, default=3, help='timed passes per config')
    p.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads (default: torch)'
    )
    p.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    p.add_argument('--value-rtol', type=float, default=1e-5)
    p.add_argument('--grad-rtol', type=float, default=1e-4)
    p.add_argument('--skip-check', action='store_true')
    p.add_argument(
        '--in-process',
        action='store_true',
        help='run every configuration in this process: fine on CUDA (the peak '
        'counter is reset per configuration); on the CPU a smoke test only (the '
        'ru_maxrss high-water mark is then not per configuration)',
    )
    # Internal: one measurement / one check, in this (fresh) process.
    p.add_argument('--worker', choices=['measure', 'check'], help=argparse.SUPPRESS)
    p.add_argument('--method', choices=METHODS, help=argparse.SUPPRESS)
    return p


def _finish_args(args: argparse.Namespace) -> None:
    """Fill in defaults that depend on other arguments; apply ``--threads``."""
    if args.common_dim is None:
        args.common_dim = args.k * 7 // 8
    if args.threads is not None:
        torch.set_num_threads(args.threads)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    _finish_args(args)

    if args.worker == 'measure':
        print(json.dumps(measure(args)))
        return
    if args.worker == 'check':
        print(json.dumps(check(args)))
        return

    device = pick_device(args.device)
    common = [
        f'--k={args.k}',
        f'--common-dim={args.common_dim}',
        f'--device={device}',
        f'--repeats={args.repeats}',
        f'--value-rtol={args.value_rtol}',
        f'--grad-rtol={args.grad_rtol}',
    ]
    if args.threads is not None:
        common.append(f'--threads={args.threads}')
    rows = []
    for n in args.n:
        row: dict[str, Any] = {'n': n}
        for method in args.methods:
            row[method] = subprocess_json(
                [*common, f'--n={n}', '--worker=measure', f'--method={method}'],
                args.in_process,
            )
        if 'reference' in args.methods:
            base = row['reference']
            for method in args.methods:
                if method == 'reference':
                    continue
                row[method]['speedup_vs_reference'] = (
                    base['seconds_median'] / row[method]['seconds_median']
                )
                if 'cpu_seconds_median' in base:
                    row[method]['cpu_speedup_vs_reference'] = (
                        base['cpu_seconds_median'] / row[method]['cpu_seconds_median']
                    )
                row[method]['memory_ratio_vs_reference'] = base[
                    'peak_memory_mib'
                ] / max(row[method]['peak_memory_mib'], 1e-9)
        if not args.skip_check:
            row['check'] = subprocess_json(
                [*common, f'--n={n}', '--worker=check'], args.in_process
            )
        rows.append(row)
    emit(
        {
            'benchmark': 'decur_loss',
            'config': {
                'k': args.k,
                'n': args.n,
                'common_dim': args.common_dim,
                'repeats': args.repeats,
                'threads': torch.get_num_threads(),
                'methods': args.methods,
                'value_rtol': args.value_rtol,
                'grad_rtol': args.grad_rtol,
                'memory': 'cuda max_memory_allocated'
                if device.type == 'cuda'
                else 'ru_maxrss rise in a fresh process',
            },
            'environment': environment(device),
            'results': rows,
        }
    )


if __name__ == '__main__':
    main()
