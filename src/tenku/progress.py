"""The one switch for progress bars: ``TENKU_NO_PROGRESS`` set to anything but ``""``, ``0``, ``false``,
``no`` or ``off`` turns every bar off (tests and logs set it), whatever a caller asked for.

    from tenku.progress import progress_bar, progress_enabled
    with progress_bar(total=16, desc="denoising", enabled=show) as bar: ...
"""

from __future__ import annotations

import os
from typing import Any


def progress_enabled(asked: bool = True) -> bool:
    """``asked``, unless the environment turns progress bars off (see the module docstring)."""
    off = os.environ.get("TENKU_NO_PROGRESS", "").strip().lower() not in ("", "0", "false", "no", "off")
    return bool(asked) and not off


def progress_bar(enabled: bool = True, **kwargs: Any):
    """A ``tqdm`` bar (``total``, ``desc``, ``unit``, ... as for tqdm), disabled unless :func:`progress_enabled`."""
    from tqdm.auto import tqdm

    return tqdm(disable=not progress_enabled(enabled), **kwargs)
