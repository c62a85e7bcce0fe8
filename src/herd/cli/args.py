"""Argument types: numbers are numbers (finite, in range), refused by argparse naming the flag."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def amount(minimum: float = 0.0) -> Callable[[str], float]:
    """A finite number of at least ``minimum`` (``--cpu-limit 8``, ``--duration 1.5``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {text!r}")
        return value

    return parse


def count(minimum: int = 1) -> Callable[[str], int]:
    """A whole number of at least ``minimum`` (``-j 4``, ``--attempt 2``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value

    return parse
