"""Seeds: the one place a random seed is drawn and a given one is checked."""

from __future__ import annotations

import random

from tenku.errors import TenkuError


def draw_seed() -> int:
    """A fresh seed in [0, 2**31) from the operating system's randomness (not the global RNG)."""
    return random.SystemRandom().randrange(2**31)


def check_seed(seed) -> int:
    """``seed`` if it is an integer in [0, 2**63), else TenkuError."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise TenkuError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return seed
