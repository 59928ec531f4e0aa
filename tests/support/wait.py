"""Wait on a condition, bounded: the one polling loop the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "the condition",
             every: float = 0.02) -> T:
    """Call predicate until it returns something true and return that; TimeoutError
    naming `what` (a string, or a callable giving one) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what() if callable(what) else what} within {timeout} s")
        time.sleep(every)
