"""Online probes: how useful one modality's frozen encoder is for a labelled task.

Every ``every_n_epochs`` training epochs the probe embeds the training split of a
labelled data module (the bank) and its validation split (the queries) with
``task.backbones[modality]`` in eval mode, without gradients, and logs how well
the bank's labels predict the queries' labels: the accuracy of a k-nearest-
neighbour vote for single-label data, the mean average precision of a
neighbour-weighted label score for multi-label data, or the same metrics of a
linear classifier fitted on the bank (:class:`LinearProbe`).
"""

import time
import warnings
from collections.abc import Iterable, Sized
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightly.utils.benchmarking.knn import knn_predict
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torchmetrics.functional.classification import multilabel_average_precision

ProbeTask = Literal['multiclass', 'multilabel']


class OnlineProbe(Callback):
    """Base of the probes: embeds a labelled data module with a frozen encoder.

    Subclasses implement :meth:`score`. The data module's evaluation transform
    (its ``val_aug``, else ``aug``: torchgeo data modules apply it on the device
    after the batch transfer) is applied to both splits, so the bank is not
    randomly augmented.
    """

    #: Name of the logged metric, after ``probe_``.
    kind = 'probe'

    def __init__(
        self,
        datamodule: pl.LightningDataModule,
        modality: str,
        every_n_epochs: int = 1,
        task: ProbeTask = 'multiclass',
        num_classes: int | None = None,
        image_key: str | None = None,
        label_key: str = 'label',
        max_batches: int | None = None,
    ) -> None:
        """Initialize a new probe.

        Args:
            datamodule: Labelled data module; its training split is the bank,
                its validation split the queries.
            modality: Which encoder (``task.backbones[modality]``) to probe.
            every_n_epochs: Probe after every n-th training epoch.
            task: ``'multiclass'`` (one class index per sample; accuracy) or
                ``'multilabel'`` (a 0/1 vector per sample; mAP).
            num_classes: Number of classes (None: the largest bank label + 1, or
                the label vector's length).
            image_key: Batch key of the images (None: ``image_<modality>`` when
                the batch has it, else ``image``).
            label_key: Batch key of the labels.
            max_batches: Use at most this many batches of each split.

        Raises:
            ValueError: For a ``task`` other than the two above or a
                non-positive ``every_n_epochs`` / ``max_batches``.
        """
        if task not in ('multiclass', 'multilabel'):
            raise ValueError(f"task must be 'multiclass' or 'multilabel', got {task!r}")
        if every_n_epochs < 1:
            raise ValueError(f'every_n_epochs must be positive, got {every_n_epochs}')
        if max_batches is not None and max_batches < 1:
            raise ValueError(f'max_batches must be positive, got {max_batches}')
        self.datamodule = datamodule
        self.modality = modality
        self.every_n_epochs = every_n_epochs
        self.task = task
        self.num_classes = num_classes
        self.image_key = image_key
        self.label_key = label_key
        self.max_batches = max_batches
        self._ready = False
        #: The last probe's metric value and its cost in seconds.
        self.last_value: float | None = None
        self.last_seconds: float | None = None

    @property
    def metric_name(self) -> str:
        """Name of the logged metric."""
        what = 'acc' if self.task == 'multiclass' else 'map'
        return f'probe_{self.kind}_{self.modality}_{what}'

    def _setup(self) -> None:
        if not self._ready:
            try:
                self.datamodule.prepare_data()
                self.datamodule.setup('fit')
            except Exception as err:
                err.add_note(
                    f'(while {self._name()} set up its data module '
                    f'{type(self.datamodule).__name__})'
                )
                raise
            self._ready = True

    def _name(self) -> str:
        return f'{type(self).__name__}(modality={self.modality!r})'

    def _check_encoder(self, pl_module: pl.LightningModule) -> Any:
        """The task's encoder for ``modality``.

        Raises:
            ValueError: If the task has no encoder for ``modality``.
        """
        backbones = getattr(pl_module, 'backbones', None)
        if backbones is None or self.modality not in backbones:
            names = list(backbones) if backbones is not None else []
            raise ValueError(
                f'{type(self).__name__}: {type(pl_module).__name__} has no encoder '
                f'for modality {self.modality!r}; it has {names}'
            )
        return backbones[self.modality]

    def _image_key(self, batch: dict[str, Any]) -> str:
        key = self.image_key
        if key is None:
            key = f'image_{self.modality}'
            key = key if key in batch else 'image'
        return key

    def _check_keys(self, batch: dict[str, Any]) -> None:
        """Raise a KeyError naming a batch key the probe needs and lacks."""
        for needed in (self._image_key(batch), self.label_key):
            if needed not in batch:
                raise KeyError(
                    f'{type(self).__name__}: the batches of '
                    f'{type(self.datamodule).__name__} have no {needed!r}; '
                    f'keys: {sorted(batch)} (set image_key / label_key)'
                )

    def bank_size(self) -> int | None:
        """Samples in the bank (the training split), when the loader knows it.

        Returns:
            The count (capped by ``max_batches``), or None for unsized data.
        """
        loader = self.datamodule.train_dataloader()
        dataset = getattr(loader, 'dataset', None)
        if not isinstance(dataset, Sized):
            return None
        size = len(dataset)
        batch_size = getattr(loader, 'batch_size', None)
        if self.max_batches is not None and batch_size:
            size = min(size, self.max_batches * int(batch_size))
        return size

    def check(self, pl_module: pl.LightningModule) -> None:
        """Check the probe against the task and its data before any training step.

        Sets the data module up and reads one batch of each split, so a
        modality the task lacks, a missing data folder or a wrong ``image_key``
        / ``label_key`` fail at the start of ``fit`` instead of after the first
        epoch (before any checkpoint).

        Args:
            pl_module: The task being trained.

        Raises:
            ValueError: If the task has no encoder for ``modality``, or a split
                yields no batch.
            KeyError: If the batches lack the image or label key.
        """
        self._check_encoder(pl_module)
        self._setup()
        for split in ('train', 'val'):
            loader = getattr(self.datamodule, f'{split}_dataloader')()
            batch = next(iter(loader), None)
            if batch is None:
                raise ValueError(
                    f'{self._name()}: the {split} split of '
                    f'{type(self.datamodule).__name__} yields no batch'
                )
            self._check_keys(batch)

    def setup(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str
    ) -> None:
        """Run :meth:`check` when ``fit`` starts."""
        if stage == 'fit':
            self.check(pl_module)

    def _transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        for name in ('val_aug', 'aug'):
            aug = getattr(self.datamodule, name, None)
            if aug is not None:
                return aug(batch)  # type: ignore[no-any-return]
        return batch

    @torch.no_grad()
    def embed(
        self, encoder: nn.Module, loader: Iterable[Any], device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """Features and labels of a split.

        Args:
            encoder: The frozen encoder (already in eval mode).
            loader: The split's data loader.
            device: Where to run the encoder.

        Returns:
            Features (N, D) float32 and labels ((N,) or (N, C)), on ``device``.

        Raises:
            KeyError: If a batch lacks the image or label key.
        """
        feats, labels = [], []
        for i, batch in enumerate(loader):
            if self.max_batches is not None and i >= self.max_batches:
                break
            batch = {
                k: v.to(device) if isinstance(v, Tensor) else v
                for k, v in batch.items()
            }
            batch = self._transform(batch)
            self._check_keys(batch)
            key = self._image_key(batch)
            feats.append(encoder(batch[key].float()).float().flatten(1))
            labels.append(batch[self.label_key])
        if not feats:
            raise ValueError(f'{type(self.datamodule).__name__} yielded no batches')
        return torch.cat(feats), torch.cat(labels)

    def score(
        self, bank: Tensor, bank_labels: Tensor, queries: Tensor, labels: Tensor
    ) -> float:
        """The probe's metric (implemented by subclasses).

        Args:
            bank: Bank features (N, D).
            bank_labels: Bank labels ((N,) or (N, C)).
            queries: Query features (M, D).
            labels: Query labels ((M,) or (M, C)).

        Returns:
            Accuracy or mAP in [0, 1].
        """
        raise NotImplementedError

    def _classes(self, bank_labels: Tensor, labels: Tensor) -> int:
        if self.num_classes is not None:
            return self.num_classes
        if self.task == 'multilabel':
            return int(bank_labels.shape[1])
        return int(max(bank_labels.max(), labels.max())) + 1

    def run(self, pl_module: pl.LightningModule) -> float:
        """Embed both splits and compute the metric.

        Args:
            pl_module: A task with ``backbones[modality]``.

        Returns:
            The metric value.

        Raises:
            ValueError: If the task has no encoder for ``modality``.
        """
        encoder = self._check_encoder(pl_module)
        start = time.perf_counter()
        self._setup()
        was_training = encoder.training
        encoder.eval()
        try:
            device = pl_module.device
            bank, bank_labels = self.embed(
                encoder, self.datamodule.train_dataloader(), device
            )
            queries, labels = self.embed(
                encoder, self.datamodule.val_dataloader(), device
            )
        finally:
            encoder.train(was_training)
        value = self.score(bank, bank_labels, queries, labels)
        self.last_value = value
        self.last_seconds = time.perf_counter() - start
        return value

    def on_train_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        """Probe and log after every ``every_n_epochs``-th epoch."""
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        value = self.run(pl_module)
        pl_module.log(self.metric_name, value, on_epoch=True, rank_zero_only=True)


class KNNProbe(OnlineProbe):
    """k-nearest-neighbour probe of a frozen encoder.

    Single-label: lightly's :func:`~lightly.utils.benchmarking.knn.knn_predict`
    (cosine similarity, ``exp(sim / temperature)`` weighted vote of the ``k``
    nearest bank samples), logged as ``probe_knn_<modality>_acc``. Multi-label:
    the same neighbours and weights average the bank's 0/1 label vectors into a
    score per class (knn_predict only handles one label per sample, hence written
    here), ranked by torchmetrics' macro average precision, logged as
    ``probe_knn_<modality>_map``.
    """

    kind = 'knn'

    def __init__(
        self,
        datamodule: pl.LightningDataModule,
        modality: str,
        every_n_epochs: int = 1,
        k: int = 20,
        temperature: float = 0.1,
        task: ProbeTask = 'multiclass',
        num_classes: int | None = None,
        image_key: str | None = None,
        label_key: str = 'label',
        max_batches: int | None = None,
    ) -> None:
        """Initialize a new KNNProbe instance.

        Args:
            datamodule: Labelled data module (training split: bank; validation
                split: queries).
            modality: Which encoder to probe.
            every_n_epochs: Probe after every n-th training epoch.
            k: Number of neighbours (at most the bank size is used).
            temperature: Temperature of the similarity weights, > 0.
            task: ``'multiclass'`` (accuracy) or ``'multilabel'`` (mAP).
            num_classes: Number of classes (None: inferred from the labels).
            image_key: Batch key of the images (None: ``image_<modality>`` or
                ``image``).
            label_key: Batch key of the labels.
            max_batches: Use at most this many batches of each split.

        Raises:
            ValueError: For ``k`` < 1, ``temperature`` <= 0 or invalid base options.
        """
        if k < 1:
            raise ValueError(f'k must be positive, got {k}')
        if not temperature > 0:
            raise ValueError(f'temperature must be positive, got {temperature}')
        super().__init__(
            datamodule,
            modality,
            every_n_epochs,
            task,
            num_classes,
            image_key,
            label_key,
            max_batches,
        )
        self.k = k
        self.temperature = temperature
        self._warned_k = False

    def _warn_k(self, bank: int) -> None:
        """Warn once that ``k`` exceeds the bank (only ``bank`` neighbours exist)."""
        if self.k > bank and not self._warned_k:
            self._warned_k = True
            warnings.warn(
                f'{self._name()}: k={self.k} is larger than the bank of {bank} '
                f'samples (the training split of {type(self.datamodule).__name__}); '
                f'the vote uses all {bank} (k={bank}). Lower k or enlarge the bank',
                UserWarning,
                stacklevel=2,
            )

    def check(self, pl_module: pl.LightningModule) -> None:
        """As :meth:`OnlineProbe.check`, and warn when ``k`` exceeds the bank.

        Args:
            pl_module: The task being trained.
        """
        super().check(pl_module)
        bank = self.bank_size()
        if bank is not None:
            self._warn_k(bank)

    def score(
        self, bank: Tensor, bank_labels: Tensor, queries: Tensor, labels: Tensor
    ) -> float:
        """Accuracy (single-label) or mAP (multi-label) of the kNN vote."""
        bank = F.normalize(bank, dim=1)
        queries = F.normalize(queries, dim=1)
        self._warn_k(bank.shape[0])
        k = min(self.k, bank.shape[0])
        classes = self._classes(bank_labels, labels)
        if self.task == 'multiclass':
            pred = knn_predict(
                queries, bank.T, bank_labels.long(), classes, k, self.temperature
            )
            return float((pred[:, 0] == labels.long()).float().mean())
        sim, index = (queries @ bank.T).topk(k, dim=1)
        weights = (sim / self.temperature).exp()
        scores = (weights[..., None] * bank_labels.float()[index]).sum(1)
        scores = scores / weights.sum(1, keepdim=True)
        return float(
            multilabel_average_precision(scores, labels.long(), num_labels=classes)
        )


class LinearProbe(OnlineProbe):
    """Linear-classifier probe of a frozen encoder.

    Fits a logistic-regression layer on the standardised bank features (full
    batch, Adam, ``steps`` iterations: cheap, the features are computed once) and
    logs the queries' accuracy (``probe_linear_<modality>_acc``) or mAP
    (``probe_linear_<modality>_map``).
    """

    kind = 'linear'

    def __init__(
        self,
        datamodule: pl.LightningDataModule,
        modality: str,
        every_n_epochs: int = 1,
        steps: int = 200,
        lr: float = 0.01,
        weight_decay: float = 1e-4,
        task: ProbeTask = 'multiclass',
        num_classes: int | None = None,
        image_key: str | None = None,
        label_key: str = 'label',
        max_batches: int | None = None,
    ) -> None:
        """Initialize a new LinearProbe instance.

        Args:
            datamodule: Labelled data module (training split: fitted; validation
                split: scored).
            modality: Which encoder to probe.
            every_n_epochs: Probe after every n-th training epoch.
            steps: Optimisation steps of the classifier.
            lr: Adam learning rate.
            weight_decay: L2 penalty of the classifier.
            task: ``'multiclass'`` (accuracy) or ``'multilabel'`` (mAP).
            num_classes: Number of classes (None: inferred from the labels).
            image_key: Batch key of the images.
            label_key: Batch key of the labels.
            max_batches: Use at most this many batches of each split.

        Raises:
            ValueError: For non-positive ``steps`` or ``lr``.
        """
        if steps < 1 or not lr > 0:
            raise ValueError(f'steps and lr must be positive, got {steps} and {lr}')
        super().__init__(
            datamodule,
            modality,
            every_n_epochs,
            task,
            num_classes,
            image_key,
            label_key,
            max_batches,
        )
        self.steps = steps
        self.lr = lr
        self.weight_decay = weight_decay

    def score(
        self, bank: Tensor, bank_labels: Tensor, queries: Tensor, labels: Tensor
    ) -> float:
        """Accuracy or mAP of a linear classifier fitted on the bank."""
        classes = self._classes(bank_labels, labels)
        mean, std = bank.mean(0), bank.std(0, unbiased=False) + 1e-6
        x, q = (bank - mean) / std, (queries - mean) / std
        # A fixed seed: the probe's value must not depend on the training RNG, and
        # must not move it.
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(0)
            head = nn.Linear(x.shape[1], classes).to(x.device)
            opt = torch.optim.Adam(
                head.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
            for _ in range(self.steps):
                opt.zero_grad()
                logits = head(x)
                if self.task == 'multiclass':
                    loss = F.cross_entropy(logits, bank_labels.long())
                else:
                    loss = F.binary_cross_entropy_with_logits(
                        logits, bank_labels.float()
                    )
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        with torch.no_grad():
            out = head(q)
        if self.task == 'multiclass':
            return float((out.argmax(1) == labels.long()).float().mean())
        return float(
            multilabel_average_precision(out, labels.long(), num_labels=classes)
        )
