"""Small helpers shared by the datasets."""

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate, get_worker_info


def distinct_subset(
    modalities: Sequence[str], allowed: Sequence[str]
) -> tuple[str, ...]:
    """Validate a modality list: non-empty, no repeats, only ``allowed`` names.

    Args:
        modalities: Requested modalities, in the order samples should use.
        allowed: Modalities the dataset has.

    Returns:
        ``modalities`` as a tuple.

    Raises:
        ValueError: If the list is empty, repeats a name or names an unknown one.
    """
    mods = tuple(modalities)
    if not mods or len(set(mods)) != len(mods) or set(mods) - set(allowed):
        raise ValueError(
            f'modalities must be distinct entries of {tuple(allowed)}, got {list(mods)}'
        )
    return mods


#: Attribute set on the tensors :func:`batch_buffer` returns.
_BATCH_BUFFER = '_torchgeo_decur_batch_buffer'


def batch_buffer(shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """An uninitialised tensor to assemble a batch in.

    In a DataLoader worker it lives in shared memory, as the tensors that
    :func:`torch.utils.data.default_collate` builds there do, so handing the batch
    to the main process copies nothing. (torch has no public call for an
    uninitialised shared tensor; ``UntypedStorage._new_shared`` is the one
    ``default_collate`` itself uses.)

    Args:
        shape: Batch shape, e.g. (B, C, H, W).
        dtype: Element type.

    Returns:
        A contiguous CPU tensor of that shape and type.
    """
    if get_worker_info() is None:
        out = torch.empty(tuple(shape), dtype=dtype)
    else:
        nbytes = math.prod(shape) * dtype.itemsize
        storage: torch.UntypedStorage = torch.UntypedStorage._new_shared(nbytes)  # type: ignore[no-untyped-call]
        out = torch.empty(0, dtype=dtype)
        # Without strides set_ makes the tensor contiguous; torch's stubs list
        # only the overload that takes them.
        out.set_(storage, 0, tuple(shape))  # type: ignore[call-overload]
    # Marks the tensor for collate_batch_rows, which hands on only such buffers.
    setattr(out, _BATCH_BUFFER, True)
    return out


def collate_batch_rows(samples: Sequence[Any]) -> Any:
    """Collate samples, returning batch buffers whose rows they already are.

    A dataset's ``__getitems__`` can read a whole batch into one buffer per key
    (:func:`batch_buffer`) and return the rows as samples; stacking them again
    would copy the batch a second time. When every value of every sample is row
    ``i`` of one buffer made by :func:`batch_buffer`, in order, that buffer is the
    batch; anything else goes through :func:`torch.utils.data.default_collate`
    (rows of any other tensor, e.g. a dataset's preloaded array, are copied, so
    the batch never aliases a dataset's own memory).

    Args:
        samples: Samples in batch order (dictionaries of tensors, or anything
            :func:`~torch.utils.data.default_collate` takes).

    Returns:
        The batch.
    """
    first = samples[0]
    if not all(isinstance(sample, dict) for sample in samples):
        return default_collate(list(samples))
    batch: dict[str, Any] = {}
    for key, value in first.items():
        base = value._base if isinstance(value, Tensor) else None
        if (
            base is None
            or not getattr(base, _BATCH_BUFFER, False)
            or base.shape[0] != len(samples)
        ):
            return default_collate(list(samples))
        for row, sample in enumerate(samples):
            item = sample.get(key)
            if (
                not isinstance(item, Tensor)
                or item._base is not base
                or item.data_ptr() != base[row].data_ptr()
                or item.shape != base.shape[1:]
            ):
                return default_collate(list(samples))
        batch[key] = base
    if any(set(sample) != set(first) for sample in samples):
        return default_collate(list(samples))
    return batch
