"""One botocore data loader per process, so that a new S3 client does not parse botocore's models again.

Creating a boto3 client reads and parses botocore's JSON models (the service's API, its endpoint
rules, the partitions): about 0.08 CPU-s for S3, paid again by every new session, because each
session has a loader of its own. The provider's hooks create a session per hook, and a staging
task creates its hook afresh. Every S3 client of the project's hook uses :func:`shared_loader`
instead, which parses each file once per process.

``airflow_local_settings`` calls :func:`warm` in the scheduler and in Celery workers: the task
processes they fork then find the models parsed. Like :mod:`sparkify.compat`, this module is
imported before the scheduler forks, so a change to it takes effect when the scheduler restarts.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any


@cache
def shared_loader() -> Any:
    """botocore's default loader (``AWS_DATA_PATH`` included) plus boto3's data folder, as each boto3
    session builds it; its cache of parsed files is kept for the life of the process."""
    import boto3
    from botocore.loaders import create_loader

    loader = create_loader()
    loader.search_paths.append(os.path.join(os.path.dirname(boto3.__file__), "data"))
    return loader


def use_shared_loader(session: Any) -> Any:
    """``session`` (boto3) with its botocore session's data loader replaced by :func:`shared_loader`."""
    session._session.register_component("data_loader", shared_loader())
    return session


def warm() -> None:
    """Parse what an S3 client needs now. No network call: the client is only built."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="warm", aws_secret_access_key="warm", region_name="us-east-1")
    use_shared_loader(session).client("s3")
