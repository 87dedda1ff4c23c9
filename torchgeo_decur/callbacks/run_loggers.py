"""TensorBoard and CSV logs under the trainer's ``default_root_dir``.

Lightning's loggers take their folder when they are built, before the trainer
(and so its ``default_root_dir``) exists: a YAML recipe that names them has to
repeat the folder, and ``--trainer.default_root_dir`` then moves nothing.
:class:`RunLoggers` builds them once the trainer runs, under
``<default_root_dir>/tensorboard/version_<n>`` and
``<default_root_dir>/csv/version_<n>`` (a new version per run, like Lightning's
own loggers). The recipes in ``conf/`` set ``trainer.logger: false`` and list
this callback; their :class:`~lightning.pytorch.callbacks.ModelCheckpoint`
without ``dirpath`` then writes to ``<default_root_dir>/checkpoints`` (Lightning
resolves the checkpoint folder in ``setup``, before :meth:`RunLoggers.on_fit_start`
adds the loggers), so every file of a run follows ``--trainer.default_root_dir``
and ``<default_root_dir>/checkpoints/last.ckpt`` names the latest run's
checkpoint whatever the version of its logs.
"""

import lightning.pytorch as pl
from lightning.pytorch import Callback
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger


class RunLoggers(Callback):
    """Add TensorBoard and CSV loggers under ``trainer.default_root_dir``.

    For ``fit`` they are added in :meth:`on_fit_start`, after the checkpoint
    callbacks have chosen their folder; for ``validate``, ``test`` and
    ``predict`` in :meth:`setup`. Loggers of the trainer's own (``logger``)
    are kept, in front of these.
    """

    def __init__(self, tensorboard: bool = True, csv: bool = True) -> None:
        """Initialize a new RunLoggers instance.

        Args:
            tensorboard: Add a :class:`~lightning.pytorch.loggers.TensorBoardLogger`
                writing to ``<default_root_dir>/tensorboard/version_<n>``.
            csv: Add a :class:`~lightning.pytorch.loggers.CSVLogger` writing
                ``<default_root_dir>/csv/version_<n>/metrics.csv``.

        Raises:
            ValueError: If both are off (then set ``trainer.logger: false``
                and leave this callback out).
        """
        super().__init__()
        if not (tensorboard or csv):
            raise ValueError(
                'RunLoggers: tensorboard and csv are both false; leave the '
                'callback out for a run without logs'
            )
        self.tensorboard = tensorboard
        self.csv = csv
        self.added: list[Logger] = []

    def _add(self, trainer: pl.Trainer) -> None:
        """Build the loggers and append them to ``trainer.loggers``."""
        if any(logger in trainer.loggers for logger in self.added):
            return  # already there (a trainer that runs again)
        root = trainer.default_root_dir
        loggers: list[Logger] = []
        if self.tensorboard:
            # Rank 0 picks the version; every rank writes (or not) to the same.
            version = TensorBoardLogger(root, name='tensorboard').version
            version = trainer.strategy.broadcast(version)
            loggers.append(TensorBoardLogger(root, name='tensorboard', version=version))
        if self.csv:
            version = CSVLogger(root, name='csv').version
            version = trainer.strategy.broadcast(version)
            loggers.append(CSVLogger(root, name='csv', version=version))
        self.added = loggers
        trainer.loggers = [*trainer.loggers, *loggers]

    def setup(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str
    ) -> None:
        """Add the loggers now unless this is ``fit``.

        Args:
            trainer: The trainer.
            pl_module: The module it runs.
            stage: ``fit``, ``validate``, ``test`` or ``predict``.
        """
        if stage != 'fit':
            self._add(trainer)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Add the loggers, after the checkpoint folder is chosen.

        Args:
            trainer: The trainer.
            pl_module: The module it fits.
        """
        self._add(trainer)


__all__ = ('RunLoggers',)
