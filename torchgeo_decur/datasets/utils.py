"""Small helpers shared by the datasets."""

from collections.abc import Sequence


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
