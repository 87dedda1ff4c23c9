"""Reading checkpoint files safely and writing files atomically.

Every file the package reads is loaded with ``weights_only=True`` and unwrapped to
a state dict here; every file it writes goes through :func:`save_atomically`
(temporary file in the same directory, ``os.replace``, the user's umask).
"""

import glob
import os
import secrets
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a checkpoint file safely and return its model state dict.

    Accepts a plain state dict, the reference code's ``{'epoch', 'model',
    'optimizer'}`` wrapper and Lightning checkpoints (``'state_dict'``). Files are
    read with ``weights_only=True``, so no code in them runs.

    Args:
        path: Path of the ``.pth`` / ``.ckpt`` file.

    Returns:
        Map from parameter name to tensor.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If ``path`` is a directory, not a PyTorch file (truncated,
            text, foreign pickle) or holds no recognisable state dict.
    """
    obj = load_checkpoint_file(path)
    return unwrap_state_dict(obj, source=os.fspath(path))


def load_checkpoint_file(
    path: str | os.PathLike[str], map_location: str = 'cpu'
) -> Any:
    """``torch.load`` a file with ``weights_only=True`` and errors naming the path.

    torch's own errors for a damaged file (``KeyError: 101`` for a text file,
    ``EOFError`` for an empty one, a miniz message for a truncated archive) do not
    say which file was read; each is re-raised here as one ``ValueError`` that
    does.

    Args:
        path: Path of the ``.pth`` / ``.ckpt`` file.
        map_location: Where tensors are loaded (``'meta'``: shapes only).

    Returns:
        What the file holds (tensors, containers and plain values only).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        PermissionError: If it cannot be read (the message names it).
        ValueError: If ``path`` is a directory or not a loadable PyTorch file.
    """
    source = os.fspath(path)
    if os.path.isdir(source):
        raise ValueError(
            f'checkpoint {source!r} is a directory; pass the .pth/.ckpt file inside it'
        )
    if not os.path.isfile(source):
        raise FileNotFoundError(f'checkpoint file {source!r} does not exist')
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except PermissionError:
        raise
    except Exception as err:
        # A text or foreign file fails inside the unpickler with whatever its
        # first byte means as an opcode (IndexError, KeyError, EOFError,
        # UnpicklingError, ...): every failure of the load is this file's fault.
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        # torch's weights_only refusal puts the reason on a later line.
        reason = next(
            (ln for ln in lines if ln.startswith('WeightsUnpickler error')),
            lines[0] if lines else type(err).__name__,
        )
        raise ValueError(
            f'checkpoint file {source!r} cannot be read as a PyTorch file with '
            'weights_only=True (truncated, not written by torch.save, or holding '
            f'more than tensors): {type(err).__name__}: {reason}'
        ) from None


def check_finite(state_dict: Mapping[str, Tensor], source: str) -> None:
    """Raise if any floating-point tensor holds NaN or infinity.

    Args:
        state_dict: Map from parameter name to tensor.
        source: Where the weights came from, for error messages.

    Raises:
        ValueError: Naming the first non-finite key and how many values are bad.
    """
    for key, value in state_dict.items():
        if isinstance(value, Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise ValueError(
                    f'{source}: tensor {key!r} holds {bad} non-finite value(s) '
                    '(NaN or inf), e.g. from a diverged run; refusing to export it'
                )


def file_mode() -> int:
    """The mode a new file gets under the process's umask (``0o666 & ~umask``).

    For files that a library writes with a fixed mode (safetensors and
    ``tempfile.mkstemp`` write 0600), to be ``chmod``-ed to the usual one.

    Returns:
        The permission bits.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


#: Marker in the names of the temporary files of :func:`save_atomically`.
TMP_MARKER = '.tmp-'


def stale_temporaries(path: str) -> list[str]:
    """Temporary files that an interrupted write of ``path`` left behind."""
    folder, name = os.path.split(os.path.abspath(path))
    return glob.glob(
        os.path.join(glob.escape(folder), f'.{glob.escape(name)}{TMP_MARKER}*')
    )


def save_atomically(
    files: Mapping[str | os.PathLike[str], Any], overwrite: bool = False
) -> None:
    """``torch.save`` several objects so that each target is old or new, never partial.

    Every object is first written (and flushed to disk) to a hidden temporary file
    ``.<name>.tmp-<random>`` in its target's folder; only when all are written are
    they moved into place with ``os.replace``, which is atomic within a file
    system. A crash or kill before that leaves every previous file untouched; its
    temporary files are removed by the next call for the same targets. Nothing is
    written when a target exists and ``overwrite`` is False.

    Args:
        files: Map from target path to the object to save (``bytes`` are written
            as they are, anything else with ``torch.save``).
        overwrite: Replace existing targets.

    Raises:
        FileExistsError: If a target exists and ``overwrite`` is False (names them).
        IsADirectoryError: If a target is a directory.
        OSError: If writing fails (full or read-only disk); the message names the
            target and no temporary file is left behind.
    """
    targets = [os.fspath(p) for p in files]
    directories = [p for p in targets if os.path.isdir(p)]
    if directories:
        raise IsADirectoryError(
            f'output {directories[0]!r} is a directory; remove it or choose another name'
        )
    existing = [p for p in targets if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(
            f'output file(s) {existing} already exist; pass --overwrite (Python: '
            'overwrite=True) to replace them'
        )
    written: list[tuple[str, str]] = []
    try:
        for target, obj in zip(targets, files.values(), strict=True):
            for stale in stale_temporaries(target):
                os.remove(stale)
            folder, name = os.path.split(os.path.abspath(target))
            tmp = os.path.join(folder, f'.{name}{TMP_MARKER}{secrets.token_hex(4)}')
            try:
                # os.open rather than tempfile.mkstemp: the file gets the usual
                # umask permissions (mkstemp's are 0600).
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                written.append((tmp, target))
                with os.fdopen(fd, 'wb') as f:
                    if isinstance(obj, bytes):  # e.g. a JSON side file
                        f.write(obj)
                    else:
                        torch.save(obj, f)
                    f.flush()
                    os.fsync(f.fileno())
            except (OSError, RuntimeError) as err:  # torch wraps some I/O errors
                raise OSError(f'cannot write {target!r}: {err}') from None
        for tmp, target in written:
            os.replace(tmp, target)
        written = []
    finally:
        for tmp, _ in written:
            if os.path.exists(tmp):
                os.remove(tmp)


def unwrap_state_dict(obj: Any, source: str = 'checkpoint') -> dict[str, Tensor]:
    """Return the model state dict held by a loaded checkpoint object.

    Args:
        obj: What ``torch.load`` returned.
        source: Name of the origin, used in error messages.

    Returns:
        Map from parameter name to tensor.

    Raises:
        ValueError: If ``obj`` holds no recognisable state dict.
    """
    if isinstance(obj, Mapping):
        for key in ('state_dict', 'model'):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and _is_state_dict(inner):
                return dict(inner)
        if _is_state_dict(obj):
            return dict(obj)
        keys = sorted(map(str, obj))[:10]
        raise ValueError(
            f'{source} is not a state dict and has no "model" or "state_dict" '
            f'entry holding one; top-level keys: {keys}'
        )
    raise ValueError(f'{source} holds a {type(obj).__name__}, not a state dict')


def _is_state_dict(obj: Mapping[Any, Any]) -> bool:
    """Whether ``obj`` maps strings to tensors (and is not empty)."""
    return bool(obj) and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    )
