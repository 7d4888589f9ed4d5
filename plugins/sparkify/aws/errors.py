"""How the AWS code tells errors apart: botocore's error codes, throttling, and the setup's own errors.

The setup's errors take their place in :mod:`sparkify.errors`: what waiting will not change is a
:class:`~sparkify.errors.PermanentError` (the task fails without retrying), what it may change is a
:class:`~sparkify.errors.TransientError`.
"""

from __future__ import annotations

from sparkify.errors import PermanentError, TransientError, error_code

__all__ = ["MissingResource", "NotCreatedBySetup", "NotReadyInTime", "UnusableResource", "error_code", "is_throttled"]


def is_throttled(err: BaseException) -> bool:
    """Whether AWS throttled the call, by the error codes botocore's standard retry mode retries as throttling."""
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return False
    return ThrottledRetryableChecker().is_retryable(RetryContext(attempt_number=1, parsed_response=response))


class NotCreatedBySetup(PermanentError):
    """A resource with the configured name exists but was not created by sparkify_setup."""


class MissingResource(PermanentError):
    """Something the step needs is not there (a cluster, an endpoint, a stored password), and waiting will not
    bring it."""


class UnusableResource(PermanentError):
    """A resource is in a state it will not leave by waiting (a failed cluster, a namespace being deleted)."""


class NotReadyInTime(TransientError):
    """A resource did not reach the awaited state before the wait's timeout: a retry waits again."""
