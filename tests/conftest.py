import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Trainer
from torch import Tensor, nn

from .distributed import Results, run_jobs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'data')
SHARED = os.path.abspath(os.path.join(ROOT, '..', 'shared', 'realdata'))


def pytest_configure(config: pytest.Config) -> None:
    """Share the CPU cores among pytest-xdist workers instead of oversubscribing.

    Every worker's torch would otherwise start one OpenMP thread per core, and
    with as many workers as cores the threads of all workers (and of the command
    lines they start, which inherit the environment) compete for the same cores:
    on a 2-core machine that made the suite about a quarter slower. Outside
    xdist torch keeps its default.
    """
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '0'))
    if 'PYTEST_XDIST_WORKER' not in os.environ or workers < 1:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else 0
    threads = max(1, (cores or os.cpu_count() or 1) // workers)
    for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def distributed(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """The results of every job of tests/distributed.py, one process group per session.

    Under pytest-xdist the first worker that asks runs the group and leaves the
    results in the session's shared temporary folder; the others wait for them.
    Skips where torch.distributed is unavailable.
    """
    if not torch.distributed.is_available():
        pytest.skip('torch.distributed unavailable')
    from filelock import FileLock

    if 'PYTEST_XDIST_WORKER' not in os.environ:
        return run_jobs()
    saved = tmp_path_factory.getbasetemp().parent / 'distributed.pt'
    with FileLock(f'{saved}.lock'):
        if not saved.exists():
            torch.save(run_jobs(), saved)
    results: Results = torch.load(saved, weights_only=True)
    return results


@pytest.fixture
def shared_realdata() -> str:
    """Path of the real sample data beside the checkout; skips when absent."""
    if not os.path.isdir(SHARED):
        pytest.skip(
            f'real sample data not found at {SHARED} (only in the dev/CI setup)'
        )
    return SHARED


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private torch.hub cache; any download attempt fails the test."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))

    def no_network(url: str, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f'test tried to download {url}')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    checkpoints = Path(torch.hub.get_dir()) / 'checkpoints'
    assert checkpoints.is_relative_to(tmp_path), 'torch.hub directory is pinned'
    checkpoints.mkdir(parents=True)
    return checkpoints


@pytest.fixture
def fast_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the slow truncated-normal initialisation of timm's ViT and smp's MiT.

    For tests that build full-size encoders only to fill them with random weights.
    """
    import segmentation_models_pytorch.encoders.mix_transformer as smp_mit
    import timm.models.vision_transformer as timm_vit

    def normal(tensor: Tensor, std: float = 1.0, **kwargs: Any) -> Tensor:
        return nn.init.normal_(tensor, 0.0, std)

    monkeypatch.setattr(smp_mit, 'trunc_normal_', normal)
    monkeypatch.setattr(timm_vit, 'trunc_normal_', normal)


@pytest.fixture
def run_benchmark(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, Any]]:
    """Run ``python -m benchmarks.<name> ARGS`` in this process; return its JSON.

    Calls the script's ``main(argv)`` (what ``python -m`` runs) from the checkout
    root, without a fresh interpreter's start-up, and restores what a benchmark
    may change process-wide: torch's thread count and its random state.
    """

    def run(module: str, *args: str) -> dict[str, Any]:
        script = importlib.import_module(module)
        threads, state = torch.get_num_threads(), torch.get_rng_state()
        monkeypatch.chdir(ROOT)
        capsys.readouterr()  # drop what the test printed before
        try:
            script.main(list(args))
        finally:
            torch.set_num_threads(threads)
            torch.set_rng_state(state)
        result: dict[str, Any] = json.loads(capsys.readouterr().out)
        return result

    return run


def quiet_trainer(**kwargs: Any) -> Trainer:
    """A CPU Trainer without logger, checkpoints, progress bar or summary.

    Args:
        **kwargs: Further Trainer arguments (e.g. ``max_steps``), or overrides.

    Returns:
        The trainer.
    """
    options: dict[str, Any] = {
        'accelerator': 'cpu',
        'logger': False,
        'enable_checkpointing': False,
        'enable_progress_bar': False,
        'enable_model_summary': False,
    }
    return Trainer(**(options | kwargs))


def _fixture_locations() -> list[str]:
    """The location folders tests/data/ssl4eo_s12/data.py writes (its LOCATIONS)."""
    import importlib.util

    path = os.path.join(DATA, 'ssl4eo_s12', 'data.py')
    spec = importlib.util.spec_from_file_location('ssl4eo_s12_fixture', path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [f'{i:07d}' for i in range(module.LOCATIONS)]


#: The good locations of the bundled SSL4EO-S12 sample, in order.
SSL4EO_S12_LOCATIONS = _fixture_locations()
