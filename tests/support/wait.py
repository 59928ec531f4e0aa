"""Wait on a condition, bounded: the one polling loop the tests and benchmarks share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0,
             what: str | Callable[[], str] = "the condition", every: float = 0.02,
             detail: Callable[[], str] | None = None) -> T:
    """Call predicate until it returns something true and return that.

    After `timeout` seconds: TimeoutError "no <what> within <timeout> s", followed by
    "; <detail()>" if detail is given (`what` may be a callable giving the text too).
    An exception the predicate raises ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"no {what() if callable(what) else what} within {timeout} s"
            raise TimeoutError(message + (f"; {detail()}" if detail is not None else ""))
        time.sleep(every)
