"""The pipeline's errors: one small hierarchy, split by what a retry would do.

- :class:`PermanentError`: the same input fails the same way again (a bad file or line, a bad
  parameter or setting, a failed data-quality check, a missing table). It is an Airflow
  ``AirflowFailException``, so the task fails at once, without spending its retries.
- :class:`TransientError`: the world may change (a source file not there yet, a warehouse that
  is busy or unreachable). A plain exception, so the task retries as its ``retries`` say.

Every error the pipeline raises on purpose is a :class:`SparkifyError`; the messages name the
file and line, the parameter, or the check, never a secret.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


class SparkifyError(Exception):
    """Base of every error the pipeline raises on purpose."""


class PermanentError(SparkifyError, AirflowFailException):
    """Deterministic: a retry would fail the same way, so the task fails without retrying."""


class TransientError(SparkifyError):
    """May pass on a later try: the task retries."""


def error_code(err: BaseException) -> str:
    """The error code of a botocore ``ClientError`` (``err.response``); ``""`` for anything else.

    Here, below the clients, so that the S3 client and the AWS setup tell errors apart the same way."""
    response = getattr(err, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code or ""
