r"""``torchgeo-decur picture``: the correlation picture of a checkpoint, as a PNG.

Builds the task and data module of a ``torchgeo fit`` config, loads the weights of
a task checkpoint, runs one validation pass (the seeded views of the validation
loop) and writes the picture of
:class:`~torchgeo_decur.callbacks.CorrelationPicture`:

    torchgeo-decur picture output/quickstart/checkpoints/last.ckpt picture.png \
        --config conf/quickstart.yaml

The PNG is written atomically; an existing file is refused unless ``--overwrite``.
Errors print one line, ``torchgeo-decur picture: error: ...``, and exit 1.
"""

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Mapping
from typing import Any

from ..checkpoints.architecture import task_architecture


def draw(
    checkpoint: str,
    output: str,
    config: str,
    max_samples: int = 2048,
    max_size: int = 256,
    accelerator: str = 'cpu',
    overwrite: bool = False,
) -> str:
    """Validate a checkpoint on its config's data and write the picture.

    Args:
        checkpoint: Lightning checkpoint of a torchgeo_decur task.
        output: PNG path.
        config: The ``torchgeo fit`` YAML (model and data sections are used).
        max_samples: Validation samples the correlations are estimated from.
        max_size: Largest side length of a drawn matrix.
        accelerator: Lightning accelerator.
        overwrite: Replace an existing ``output``.

    Returns:
        The path written.

    Raises:
        FileExistsError: If ``output`` exists and ``overwrite`` is False.
        FileNotFoundError: If ``checkpoint`` or ``config`` does not exist.
        ValueError: If the checkpoint cannot be read, the config cannot be
            parsed or builds a model of another architecture, or the validation
            pass gave fewer than two samples.
    """
    # Lightning and torchgeo's trainers load here, not when the command line is
    # assembled, so that every other subcommand starts without them.
    from lightning.pytorch import Trainer
    from lightning.pytorch.cli import LightningCLI
    from torchgeo.datamodules import BaseDataModule
    from torchgeo.tasks import BaseTask

    from ..callbacks import CorrelationPicture, correlation_figure, write_figure_png
    from ..checkpoints.files import load_checkpoint_file
    from ..checkpoints.layouts import check_state_dict

    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f'{output!r} exists; pass --overwrite to replace it')
    if os.path.isdir(config):
        raise IsADirectoryError(f'config {config!r} is a directory, not a YAML file')
    if not os.path.isfile(config):
        raise FileNotFoundError(f'config {config!r} does not exist')
    ckpt = load_checkpoint_file(checkpoint)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get('state_dict'), dict):
        raise ValueError(
            f'checkpoint {checkpoint!r} is not a Lightning checkpoint of a task '
            '(no state_dict entry)'
        )
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            cli = LightningCLI(
                model_class=BaseTask,
                datamodule_class=BaseDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                args=['--config', config, '--trainer.logger=false'],
                run=False,
                save_config_callback=None,
            )
    except SystemExit:
        found = [ln for ln in errors.getvalue().splitlines() if 'error:' in ln]
        reason = found[-1].split('error:', 1)[1].strip() if found else 'invalid'
        raise ValueError(f'config {config!r} cannot be parsed: {reason}') from None
    spec = getattr(cli.model, 'encoder_spec', None)
    built = {**cli.model.hparams, **(spec.record() if spec is not None else {})}
    check_matches(checkpoint, ckpt, config, built)
    check_state_dict(
        {k: v.shape for k, v in cli.model.state_dict().items()},
        ckpt['state_dict'],
        f'the model of {config!r} (from checkpoint {checkpoint!r})',
    )
    cli.model.load_state_dict(ckpt['state_dict'])
    picture = CorrelationPicture(max_samples=max_samples, max_size=max_size)
    trainer = Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        callbacks=[picture],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(cli.model, cli.datamodule, verbose=False)
    if picture.last_image is None:
        raise ValueError(
            f'the validation data of {config!r} gave fewer than two samples; no '
            'correlation can be estimated'
        )
    figure = correlation_figure(
        panels=picture.last_panels,
        title=f'{os.path.basename(checkpoint)}: {picture.samples} validation samples',
    )
    return write_figure_png(figure, output, overwrite=overwrite)


#: Hyperparameters that fix the shapes of a task's weights.
SHAPE_HPARAMS = ('model', 'modalities', 'in_channels', 'projector_dims')


def check_matches(
    checkpoint: str,
    ckpt: dict[str, Any],
    config: str,
    built: Mapping[str, Any],
) -> None:
    """Refuse a config whose model differs from the checkpoint's in architecture.

    Args:
        checkpoint: Path of the checkpoint, for the message.
        ckpt: The loaded checkpoint.
        config: Path of the config, for the message.
        built: Hyperparameters of the task the config builds, with the
            architecture it resolved.

    Raises:
        ValueError: Naming every differing setting (model, modalities,
            in_channels, projector_dims) with both values, in one line.
    """
    stored = {**(ckpt.get('hyper_parameters') or {}), **task_architecture(ckpt)}
    differ = [
        f'{key}={stored[key]!r} in the checkpoint but {built[key]!r} in the config'
        for key in SHAPE_HPARAMS
        if stored.get(key) is not None
        and built.get(key) is not None
        and _plain(stored[key]) != _plain(built[key])
    ]
    if differ:
        raise ValueError(
            f'checkpoint {checkpoint!r} does not match config {config!r}: '
            + '; '.join(differ)
        )


def _plain(value: Any) -> Any:
    """Containers as plain lists / dicts, for comparing hyperparameters."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    """Run ``picture``.

    Args:
        args: Parsed arguments.

    Returns:
        0, or 1 on an error (one line on stderr).
    """
    try:
        path = draw(
            args.checkpoint,
            args.output,
            args.config,
            args.max_samples,
            args.max_size,
            args.accelerator,
            args.overwrite,
        )
    except (OSError, ValueError) as error:
        message = ' '.join(str(error).split())
        print(f'torchgeo-decur picture: error: {message}', file=sys.stderr)
        return 1
    print(path)
    return 0


__all__ = ('draw', 'run')
