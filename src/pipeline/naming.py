"""Names of hearts and shards: one definition, used by the package and the workflow.

Parametric heart ``i`` is ``param{i:03d}`` (``param000``, ``param001``...); a shard is
``{heart}-{k:03d}``, the k-th shard of that heart within a campaign.
"""

from __future__ import annotations

PARAMETRIC_PREFIX = "param"


def parametric_heart(index: int) -> str:
    """Name of parametric heart ``index`` (``param007``)."""
    return f"{PARAMETRIC_PREFIX}{int(index):03d}"


def parametric_index(name: str) -> int | None:
    """Index of a parametric heart's name, or None if ``name`` is not one (a mesh heart)."""
    digits = name.removeprefix(PARAMETRIC_PREFIX)
    return int(digits) if name.startswith(PARAMETRIC_PREFIX) and digits.isdigit() else None


def shard_name(heart: str, k: int) -> str:
    """Name of the k-th shard of ``heart`` in a campaign (``param000-003``)."""
    return f"{heart}-{int(k):03d}"


def shard_heart(shard: str) -> str:
    """The heart of a shard: its name up to the last '-'."""
    return shard.rsplit("-", 1)[0]
