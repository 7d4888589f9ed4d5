"""Redshift Serverless: the namespace and workgroup, created or reused, and deleted.

The amazon provider has no hook or operator for Redshift Serverless: every function takes a
boto3 ``redshift-serverless`` client and waits with :func:`sparkify.aws.polling.wait_until`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sparkify.aws.errors import NotCreatedBySetup, UnusableResource, error_code
from sparkify.aws.polling import wait_until
from sparkify.aws.secrets import botocore_quiet
from sparkify.aws.tags import is_ours, tag_list

log = logging.getLogger(__name__)


def _get_or_none(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> dict[str, Any] | None:
    try:
        return call(**kwargs)[key]
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            return None
        raise


def get_namespace(client: Any, name: str) -> dict[str, Any] | None:
    return _get_or_none(client.get_namespace, "namespace", namespaceName=name)


def get_workgroup(client: Any, name: str) -> dict[str, Any] | None:
    return _get_or_none(client.get_workgroup, "workgroup", workgroupName=name)


def serverless_is_ours(client: Any, arn: str) -> bool:
    return is_ours(client.list_tags_for_resource(resourceArn=arn).get("tags"))


@dataclass(frozen=True)
class ServerlessState:
    host: str
    port: int
    namespace_created: bool
    workgroup_created: bool
    namespace_ours: bool


def ensure_serverless(
    client: Any,
    *,
    namespace: str,
    workgroup: str,
    admin_username: str,
    new_password: Callable[[], str],
    db_name: str,
    role_arn: str,
    base_capacity: int,
    publicly_accessible: bool,
    kms_key_id: str = "",
    reset_password: str | None = None,
    timeout: float = 1800,
    interval: float = 15,
    sleep: Callable[[float], None] = time.sleep,
) -> ServerlessState:
    """Create (or reuse) a Redshift Serverless namespace and workgroup and wait until both are available.

    ``new_password`` is called only when the namespace is created. ``reset_password`` sets the
    admin password of an existing namespace the setup created. Serverless storage is always
    encrypted (with ``kms_key_id`` if given, else an AWS-owned key).
    """
    ns = get_namespace(client, namespace)
    namespace_created = ns is None
    if ns is None:
        kwargs: dict[str, Any] = {
            "namespaceName": namespace, "adminUsername": admin_username, "adminUserPassword": new_password(),
            "dbName": db_name, "defaultIamRoleArn": role_arn, "iamRoles": [role_arn], "tags": tag_list(lower=True),
        }
        if kms_key_id:
            kwargs["kmsKeyId"] = kms_key_id
        with botocore_quiet():
            ns = client.create_namespace(**kwargs)["namespace"]
        ours = True
        log.info("Created Redshift Serverless namespace %s", namespace)
    else:
        ours = serverless_is_ours(client, ns["namespaceArn"])
        log.info("Reusing Redshift Serverless namespace %s (%s)", namespace,
                 "created by sparkify_setup" if ours else "not created by sparkify_setup")
        if role_arn not in ns.get("iamRoles", []):
            _wait_namespace(client, namespace, timeout, interval, sleep)
            client.update_namespace(namespaceName=namespace, iamRoles=[*ns.get("iamRoles", []), role_arn],
                                    defaultIamRoleArn=ns.get("defaultIamRoleArn") or role_arn)
        if reset_password and ours:
            _wait_namespace(client, namespace, timeout, interval, sleep)
            with botocore_quiet():
                client.update_namespace(namespaceName=namespace, adminUsername=admin_username,
                                        adminUserPassword=reset_password)
    _wait_namespace(client, namespace, timeout, interval, sleep)

    wg = get_workgroup(client, workgroup)
    workgroup_created = wg is None
    if wg is None:
        client.create_workgroup(
            workgroupName=workgroup, namespaceName=namespace, baseCapacity=int(base_capacity),
            publiclyAccessible=bool(publicly_accessible), tags=tag_list(lower=True),
        )
        log.info("Created Redshift Serverless workgroup %s (base capacity %d RPU)", workgroup, base_capacity)
    elif wg.get("namespaceName") != namespace:
        raise UnusableResource(
            f"workgroup {workgroup} belongs to namespace {wg.get('namespaceName')}, not {namespace}"
        )
    elif wg.get("publiclyAccessible") and not publicly_accessible:
        log.warning("Workgroup %s is publicly accessible, although publicly_accessible is off", workgroup)

    found: dict[str, Any] = {}

    def workgroup_available() -> bool:
        current = get_workgroup(client, workgroup)
        if current is None or current["status"] == "DELETING":
            raise UnusableResource(f"workgroup {workgroup} is being deleted or is gone")
        found.update(current)
        return current["status"] == "AVAILABLE"

    wait_until(workgroup_available, what=f"workgroup {workgroup} AVAILABLE", timeout=timeout,
               interval=interval, sleep=sleep)
    endpoint = found.get("endpoint") or {}
    return ServerlessState(endpoint.get("address", ""), int(endpoint.get("port", 5439)),
                           namespace_created, workgroup_created, ours)


def _wait_namespace(client: Any, namespace: str, timeout: float, interval: float,
                    sleep: Callable[[float], None]) -> None:
    def available() -> bool:
        current = get_namespace(client, namespace)
        if current is None or current["status"] == "DELETING":
            raise UnusableResource(f"namespace {namespace} is being deleted or is gone")
        return current["status"] == "AVAILABLE"

    wait_until(available, what=f"namespace {namespace} AVAILABLE", timeout=timeout, interval=interval, sleep=sleep)


def check_serverless_ours(client: Any, *, namespace: str, workgroup: str) -> bool:
    """Whether anything exists; raise if what exists was not created by sparkify_setup."""
    found = False
    for kind, name, get in (("workgroup", workgroup, get_workgroup), ("namespace", namespace, get_namespace)):
        item = get(client, name)
        if item is None:
            continue
        found = True
        if not serverless_is_ours(client, item[f"{kind}Arn"]):
            raise NotCreatedBySetup(f"Redshift Serverless {kind} {name} was not created by sparkify_setup: "
                                    "not deleting it")
    return found


def delete_serverless(
    client: Any,
    *,
    namespace: str,
    workgroup: str,
    final_snapshot: str | None,
    timeout: float = 1800,
    interval: float = 15,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Delete the workgroup, then the namespace (with a final snapshot if named); wait for each to go."""
    check_serverless_ours(client, namespace=namespace, workgroup=workgroup)
    done = []
    if get_workgroup(client, workgroup) is not None:
        client.delete_workgroup(workgroupName=workgroup)
        wait_until(lambda: get_workgroup(client, workgroup) is None, what=f"workgroup {workgroup} deleted",
                   timeout=timeout, interval=interval, sleep=sleep)
        done.append(f"workgroup {workgroup} deleted")
    if get_namespace(client, namespace) is not None:
        kwargs: dict[str, Any] = {"namespaceName": namespace}
        if final_snapshot:
            kwargs["finalSnapshotName"] = final_snapshot
        client.delete_namespace(**kwargs)
        wait_until(lambda: get_namespace(client, namespace) is None, what=f"namespace {namespace} deleted",
                   timeout=timeout, interval=interval, sleep=sleep)
        done.append(f"namespace {namespace} deleted" + (f", final snapshot {final_snapshot}" if final_snapshot else ""))
    return done
