"""Waiting for a resource the amazon provider has no waiter for (Redshift Serverless)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sparkify.aws.errors import NotReadyInTime, error_code, is_throttled

log = logging.getLogger(__name__)


def wait_until(
    probe: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call ``probe`` every ``interval`` seconds until it returns True; return how many calls it took.

    Each call is retried by botocore's standard retry mode; a poll still throttled after those
    retries counts as "not yet", since the next poll comes anyway. Any other error, or a
    :class:`~sparkify.errors.PermanentError` from ``probe`` (a state that will never turn good),
    ends the wait; so does the timeout, with :class:`~sparkify.aws.errors.NotReadyInTime`.
    """
    deadline = clock() + timeout
    calls = 0
    while True:
        calls += 1
        try:
            if probe():
                return calls
        except Exception as err:
            if not is_throttled(err):
                raise
            log.warning("%s: throttled by AWS (%s); polling again in %g s", what, error_code(err), interval)
        if clock() + interval > deadline:
            raise NotReadyInTime(f"{what}: not reached within {timeout:g} s ({calls} polls)")
        sleep(interval)
