"""The one place that knows how to reach S3: through the amazon provider's ``S3Hook``.

The AWS connection decides where S3 is: the real service, or a local S3-compatible server
through the connection's ``{"endpoint_url": ...}`` extra.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from sparkify.errors import TransientError, error_code

log = logging.getLogger(__name__)

T = TypeVar("T")
FETCH_THREADS = 16
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class S3Object:
    key: str
    etag: str
    size: int


class SourceMissing(TransientError):
    """An S3 object the run needs does not exist (or is empty)."""


@cache
def s3_hook_class() -> type:
    """The amazon provider's ``S3Hook``, with a cheaper way to name its caller in the user agent.

    Every client the provider's AWS hooks create carries a user agent naming the operator that
    asked for it (``Caller/StageToRedshiftOperator``). The provider finds that name with
    ``inspect.stack()``, which reads the source of every frame on the stack and, for each, scans
    every loaded module's file path: measured at 0.2 CPU-s of the 0.3 CPU-s that creating an S3
    client costs in a task process, paid by every Stage_events run (docs/performance.md). This
    subclass finds the same names by walking the frames (``sys._getframe``), which reads nothing:
    the user agent is unchanged (``tests/unit/test_s3_hook.py`` compares it with the provider's).

    Its sessions parse botocore's models once per process (:mod:`sparkify.botodata`).
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from sparkify.botodata import use_shared_loader

    class SparkifyS3Hook(S3Hook):
        @staticmethod
        def _find_operator_class_name(target_function_name: str) -> str | None:
            # The most recent frame of a function of that name, and the class of its ``self``,
            # as the provider's version (a frame without ``self`` raises KeyError there, too).
            frame = sys._getframe(1)
            while frame is not None:
                if frame.f_code.co_name == target_function_name:
                    return type(frame.f_locals["self"]).__name__
                frame = frame.f_back
            return None

        @staticmethod
        def _find_executor_class_name() -> str | None:
            frame = sys._getframe(1)
            while frame is not None:
                classes = [name for name, obj in frame.f_globals.items() if isinstance(obj, type)]
                if "BaseExecutor" in classes:
                    return classes[-1]
                frame = frame.f_back
            return None

        def get_session(self, region_name: str | None = None, deferrable: bool = False):
            session = super().get_session(region_name=region_name, deferrable=deferrable)
            return session if deferrable else use_shared_loader(session)

    SparkifyS3Hook.__name__ = SparkifyS3Hook.__qualname__ = "SparkifyS3Hook"
    return SparkifyS3Hook


def client_config(threads: int):
    """The botocore ``Config`` of every S3 client of the project (the tasks' hooks, the local seeder):
    a connection pool that fits ``threads`` concurrent requests, and standard retries."""
    # Imported here, not at the top: the DAG file (parsed by every task process) imports this
    # module, and only the staging tasks need boto3.
    from botocore.config import Config

    return Config(max_pool_connections=max(10, threads * 2), retries={"max_attempts": 5, "mode": "standard"})


class S3:
    """S3 for one AWS connection, with a connection pool sized for parallel GETs."""

    def __init__(self, aws_conn_id: str | None, *, threads: int = FETCH_THREADS) -> None:
        self.hook = s3_hook_class()(aws_conn_id=aws_conn_id, config=client_config(threads))
        self.threads = threads
        self.list_calls = 0
        self.get_calls = 0
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self.hook.get_conn()
        return self._client

    def head(self, bucket: str, key: str) -> S3Object | None:
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as err:
            if error_code(err) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return S3Object(key, response["ETag"].strip('"'), int(response["ContentLength"]))

    def list_pages(self, bucket: str, prefix: str, suffix: str = ".json") -> Iterator[list[S3Object]]:
        """The objects under ``prefix/`` whose key ends with ``suffix``, one listing page at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
            self.list_calls += 1
            yield [S3Object(item["Key"], item["ETag"].strip('"'), int(item["Size"]))
                   for item in page.get("Contents", []) if item["Key"].endswith(suffix)]

    def read(self, bucket: str, key: str) -> bytes:
        self.get_calls += 1
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as err:
            if error_code(err) in ("404", "NoSuchKey"):
                raise SourceMissing(f"s3://{bucket}/{key} does not exist") from None
            raise

    def stream(self, bucket: str, key: str, etag: str | None = None) -> Iterator[bytes]:
        """The object's bytes in chunks, so a large file never sits in memory whole.

        With ``etag``, the read fails if the object changed since it was listed (If-Match).
        """
        self.get_calls += 1
        kwargs = {"IfMatch": f'"{etag}"'} if etag else {}
        try:
            body = self.client.get_object(Bucket=bucket, Key=key, **kwargs)["Body"]
        except Exception as err:
            code = error_code(err)
            if code in ("404", "NoSuchKey"):
                raise SourceMissing(f"s3://{bucket}/{key} does not exist") from None
            if code in ("412", "PreconditionFailed"):
                raise TransientError(
                    f"s3://{bucket}/{key} changed while it was being staged; a retry stages it") from None
            raise
        try:
            yield from body.iter_chunks(CHUNK_BYTES)
        finally:
            body.close()

    def bucket_region(self, bucket: str) -> str:
        """The region ``bucket`` is in (S3's GetBucketLocation; no constraint means us-east-1, the
        legacy ``EU`` eu-west-1)."""
        location = self.client.get_bucket_location(Bucket=bucket).get("LocationConstraint")
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def map_bounded(self, func: Callable[[S3Object], T], objects: Iterable[S3Object]) -> Iterator[T]:
        """Apply ``func`` to objects on a thread pool, yielding results in order, few in flight.

        At most ``2 * threads`` results are held at once, so memory stays flat however many
        objects there are.
        """
        window = self.threads * 2
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="s3-fetch") as pool:
            pending: list[Future[T]] = []
            for obj in objects:
                pending.append(pool.submit(func, obj))
                if len(pending) >= window:
                    yield pending.pop(0).result()
            for future in pending:
                yield future.result()
