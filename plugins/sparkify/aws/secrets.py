"""Secrets Manager: the warehouse's admin credentials, and the secrets the setup writes.

Secrets never leave Secrets Manager except into the task that needs them: the master password
is generated there, read back inside the task, registered with Airflow's log masker
(:func:`airflow.sdk.log.mask_secret`) as soon as it is read, and never passed as a template
field, an XCom value, a log argument or an exception message. Every function takes a boto3
Secrets Manager client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow.sdk.log import mask_secret

from sparkify.aws.errors import NotCreatedBySetup
from sparkify.aws.tags import is_ours, tag_list

log = logging.getLogger(__name__)


@contextmanager
def botocore_quiet() -> Iterator[None]:
    """Keep botocore's DEBUG log (which prints request and response bodies) off for calls carrying a secret.

    Airflow masks a secret in logs once it knows it, but botocore would log a generated password
    before the task could register it.
    """
    logger = logging.getLogger("botocore")
    level = logger.level
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(level)


def describe_secret(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return sm.describe_secret(SecretId=name)
    except sm.exceptions.ResourceNotFoundException:
        return None


def read_secret(sm: Any, name: str) -> dict[str, Any] | None:
    """The secret's JSON value (a plain string becomes ``{"password": ...}``), masked in logs; or None."""
    meta = describe_secret(sm, name)
    if meta is None or meta.get("DeletedDate"):
        return None
    with botocore_quiet():
        raw = sm.get_secret_value(SecretId=name)["SecretString"]
    mask_secret(raw)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = {"password": raw}
    if not isinstance(value, dict):
        value = {"password": str(value)}
    if value.get("password"):
        mask_secret(value["password"])
    return value


def write_secret(sm: Any, name: str, value: Mapping[str, Any], description: str) -> str:
    """Store ``value`` as JSON under ``name``: create it, or update a secret the setup created."""
    if value.get("password"):
        mask_secret(value["password"])
    body = json.dumps(value)
    meta = describe_secret(sm, name)
    if meta is None:
        with botocore_quiet():
            return sm.create_secret(Name=name, SecretString=body, Description=description, Tags=tag_list())["ARN"]
    if not is_ours(meta.get("Tags")):
        raise NotCreatedBySetup(
            f"secret {name} exists but was not created by sparkify_setup: not overwriting it "
            "(choose another name, or delete it yourself)"
        )
    if meta.get("DeletedDate"):  # scheduled for deletion by an earlier teardown: bring it back
        sm.restore_secret(SecretId=name)
    with botocore_quiet():
        sm.put_secret_value(SecretId=name, SecretString=body)
    return meta["ARN"]


def remove_secret(sm: Any, name: str, recovery_days: int) -> str:
    """Schedule the secret's deletion (or delete it at once with 0 days) if the setup created it."""
    meta = describe_secret(sm, name)
    if meta is None:
        return "absent"
    if meta.get("DeletedDate"):
        return "already scheduled for deletion"
    if not is_ours(meta.get("Tags")):
        return "kept (not created by sparkify_setup)"
    if recovery_days:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=recovery_days)
        return f"scheduled for deletion in {recovery_days} days"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    return "deleted"


def generate_password(sm: Any) -> str:
    """A 32-character password Redshift accepts (upper, lower and digits; no quotes, '/', '@' or space)."""
    with botocore_quiet():
        password = sm.get_random_password(
            PasswordLength=32, ExcludePunctuation=True, IncludeSpace=False, RequireEachIncludedType=True
        )["RandomPassword"]
    mask_secret(password)
    return password


# -- the warehouse's admin credentials ----------------------------------------------------------------


@dataclass(frozen=True)
class Master:
    """The warehouse's admin credentials as stored; ``applied_to`` names the warehouse known to use them."""

    username: str
    password: str
    applied_to: str | None

    def __repr__(self) -> str:  # never the password, in a log line or a traceback's locals
        return f"Master(username={self.username!r}, password='***', applied_to={self.applied_to!r})"


def cluster_ref(cluster_identifier: str) -> str:
    """How ``applied_to`` names a provisioned cluster."""
    return f"cluster/{cluster_identifier}"


def namespace_ref(namespace: str) -> str:
    """How ``applied_to`` names a Redshift Serverless namespace."""
    return f"namespace/{namespace}"


def get_master(sm: Any, secret: str, username: str, *, create: bool) -> tuple[Master | None, bool]:
    """Read the master credentials from ``secret``; generate and store them there if missing and ``create``.

    Returns ``(master, generated)``. A secret the user stored by hand may be a plain password or
    JSON with a ``password`` key.
    """
    value = read_secret(sm, secret)
    if value and value.get("password"):
        return Master(value.get("username", username), value["password"], value.get("applied_to")), False
    if not create:
        return None, False
    password = generate_password(sm)
    write_secret(sm, secret, {"engine": "redshift", "username": username, "password": password},
                 "Sparkify: admin credentials of the Redshift warehouse (generated by sparkify_setup)")
    log.info("Generated the warehouse admin password and stored it in secret %s", secret)
    return Master(username, password, None), True


def mark_applied(sm: Any, secret: str, master: Master, warehouse: str) -> None:
    """Record in the secret that ``warehouse`` uses these credentials (only in a secret the setup owns)."""
    meta = describe_secret(sm, secret)
    if meta is None or not is_ours(meta.get("Tags")):
        return
    write_secret(sm, secret, {"engine": "redshift", "username": master.username, "password": master.password,
                              "applied_to": warehouse}, meta.get("Description", ""))
