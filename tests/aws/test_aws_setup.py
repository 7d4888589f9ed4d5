"""The setup's AWS code (sparkify.aws, its operators and sensor) where moto cannot show the behaviour,
or where a whole DAG run is not needed.

- Redshift Serverless (moto has none): the exact API calls, against botocore's ``Stubber``.
- A cluster that stays ``creating``, a failed creation, throttling: a mocked client, checking
  the calls and the waits.
- Reuse and refusal on moto's server: a paused cluster, resources the setup did not create.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from tests.aws.conftest import ACCOUNT, ADMIN_CONN_ID, REGION, Aws
from tests.helpers import load_dag

from sparkify.aws import clients, cluster, connections, polling, secrets
from sparkify.aws.bucket import ensure_bucket, remove_bucket
from sparkify.aws.errors import NotCreatedBySetup, NotReadyInTime
from sparkify.aws.iam import access_policy, ensure_role, principal_of, remove_role, same_policy, trust_policy
from sparkify.aws.serverless import ServerlessState, delete_serverless, ensure_serverless
from sparkify.aws.settings import SetupSettings
from sparkify.aws.tags import is_ours, tag_list
from sparkify.operators import CreateOrReuseClusterOperator, DeleteOwnClusterOperator
from sparkify.sensors import ClusterAvailableSensor

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/sparkify-redshift-copy"
TAGS = [{"key": "sparkify-created-by", "value": "sparkify_setup"}, {"key": "project", "value": "sparkify"}]


def client_error(code: str, operation: str = "DescribeClusters") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class Capture:
    """Equal to anything, remembering it: for a stubbed parameter whose value is only known later."""

    value: Any = None

    def __eq__(self, other: object) -> bool:
        self.value = other
        return True


# -- the DAGs' shape ------------------------------------------------------------------------------------


def test_both_dags_load_with_a_doc_on_every_task_and_manual_trigger_only():
    from airflow.dag_processing.dagbag import DagBag
    from tests.aws.conftest import ROOT_DAGS

    bag = DagBag(dag_folder=str(ROOT_DAGS))
    assert not {f: e for f, e in bag.import_errors.items() if "sparkify_setup" in f or "sparkify_teardown" in f}
    for dag_id in ("sparkify_setup", "sparkify_teardown"):
        dag = bag.dags[dag_id]
        assert dag.schedule is None and dag.doc_md
        assert all(t.doc_md for t in dag.tasks), [t.task_id for t in dag.tasks if not t.doc_md]
        assert all(p.value is not None for p in dag.params.values())  # every param has a default

    setup = bag.dags["sparkify_setup"]
    assert setup.task_dict["create_cluster"].is_setup and setup.task_dict["clean_up_failed_cluster"].is_teardown
    assert setup.task_dict["wait_for_cluster"].downstream_task_ids == {"configure_cluster", "clean_up_failed_cluster"}
    assert setup.task_dict["choose_warehouse"].downstream_task_ids == {"create_cluster", "create_serverless"}
    assert setup.task_dict["register_connections"].upstream_task_ids == {
        "configure_cluster", "create_serverless", "ensure_role", "ensure_manifest_bucket"}
    assert "master_user_password" in setup.task_dict["create_cluster"].template_fields
    assert setup.task_dict["create_cluster"].master_user_password is None  # never a template value

    teardown = bag.dags["sparkify_teardown"]
    assert teardown.task_dict["inspect_warehouse"].downstream_task_ids == {
        "delete_cluster", "pause_cluster", "delete_serverless", "remove_role"}
    assert teardown.task_dict["remove_role"].upstream_task_ids == {
        "inspect_warehouse", "delete_cluster", "delete_serverless"}


# -- the policy ----------------------------------------------------------------------------------------


def test_access_policy_grants_only_the_source_prefixes_and_the_manifest_prefix():
    policy = access_policy(
        source_bucket="udacity-dend", source_prefixes=["log_data", "song_data/"], source_keys=["log_json_path.json"],
        manifest_bucket="my-manifests", manifest_prefix="sparkify-manifests/",
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["ListSourcePrefixes"]["Condition"]["StringLike"]["s3:prefix"] == [
        "log_data", "log_data/*", "song_data", "song_data/*"]
    assert statements["ReadSourceObjects"]["Resource"] == [
        "arn:aws:s3:::udacity-dend/log_data/*", "arn:aws:s3:::udacity-dend/log_json_path.json",
        "arn:aws:s3:::udacity-dend/song_data/*"]
    assert statements["ReadWriteCopyManifests"]["Resource"] == "arn:aws:s3:::my-manifests/sparkify-manifests/*"
    assert statements["LocateManifestBucket"] == {"Sid": "LocateManifestBucket", "Effect": "Allow",
                                                  "Action": "s3:GetBucketLocation",
                                                  "Resource": "arn:aws:s3:::my-manifests"}
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:GetBucketLocation"}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert "arn:aws:s3:::*" not in json.dumps(policy) and '"s3:*"' not in json.dumps(policy)


def test_same_policy_ignores_spelling_but_not_content():
    a = {"Statement": [{"Action": "s3:GetObject", "Resource": ["b", "a"]}]}
    assert same_policy(a, json.dumps({"Statement": [{"Action": ["s3:GetObject"], "Resource": ["a", "b"]}]}))
    assert not same_policy(a, {"Statement": [{"Action": "s3:GetObject", "Resource": ["a"]}]})


@pytest.mark.parametrize(("arn", "expected"), [
    (f"arn:aws:iam::{ACCOUNT}:user/ops/alice", f"arn:aws:iam::{ACCOUNT}:user/ops/alice"),
    (f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:root"),
    (f"arn:aws:sts::{ACCOUNT}:user/moto", f"arn:aws:iam::{ACCOUNT}:user/moto"),
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice", f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/Admin"),
])
def test_principal_of_the_identity_running_the_setup(arn, expected):
    iam = mock.Mock()
    iam.get_role.return_value = {"Role": {"Arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/Admin"}}
    assert principal_of(arn, iam) == expected


def test_a_federated_user_must_name_the_principal():
    with pytest.raises(AirflowFailException, match="pipeline_principal_arn"):
        principal_of(f"arn:aws:sts::{ACCOUNT}:federated-user/bob")


# -- waiting for a cluster, a failed creation, throttling (mocked clients) ------------------------------


def sensor(**kwargs: Any) -> ClusterAvailableSensor:
    s = ClusterAvailableSensor(task_id="wait_for_cluster", cluster_identifier="sparkify",
                                         poke_interval=30, timeout=3600, **kwargs)
    s.__dict__["hook"] = mock.Mock()  # the sensor's RedshiftHook (a cached property)
    return s


def test_sensor_waits_while_the_cluster_stays_creating():
    s = sensor(mode="poke")
    s.hook.cluster_status.side_effect = ["creating", "creating", "creating", "available"]
    with mock.patch("airflow.sdk.bases.sensor.time.sleep") as sleep:
        s.execute({})
    assert s.hook.cluster_status.call_args_list == [mock.call("sparkify")] * 4
    assert sleep.call_args_list == [mock.call(30)] * 3


def test_the_dags_sensor_gives_back_its_worker_slot_while_waiting():
    s = load_dag("sparkify_setup").task_dict["wait_for_cluster"]
    assert (s.mode, s.poke_interval, s.timeout) == ("reschedule", 30, 3600)
    s = sensor(mode="reschedule")
    s.hook.cluster_status.return_value = "creating"
    ti = mock.Mock()
    ti.get_first_reschedule_date.return_value = None
    with pytest.raises(AirflowRescheduleException) as raised:
        s.execute({"ti": ti})
    assert timedelta(0) < raised.value.reschedule_date - datetime.now(UTC) <= timedelta(seconds=30)


def test_a_failed_creation_fails_the_sensor_at_once_and_is_cleaned_up():
    s = sensor(mode="poke")
    s.hook.cluster_status.side_effect = ["creating", "incompatible-network"]
    with mock.patch("airflow.sdk.bases.sensor.time.sleep") as sleep, \
            pytest.raises(AirflowFailException, match="incompatible-network"):
        s.execute({})
    assert sleep.call_count == 1

    redshift = mock.Mock()
    redshift.describe_clusters.return_value = {"Clusters": [
        {"ClusterStatus": "incompatible-network", "Tags": tag_list()}]}
    assert cluster.delete_failed_cluster(redshift, "sparkify", created_this_run=False).startswith("not created")
    redshift.delete_cluster.assert_not_called()
    assert "deleted" in cluster.delete_failed_cluster(redshift, "sparkify", created_this_run=True)
    redshift.delete_cluster.assert_called_once_with(ClusterIdentifier="sparkify", SkipFinalClusterSnapshot=True)

    healthy = mock.Mock()
    healthy.describe_clusters.return_value = {"Clusters": [{"ClusterStatus": "available",
                                                            "Tags": tag_list()}]}
    cluster.delete_failed_cluster(healthy, "sparkify", created_this_run=True)
    healthy.delete_cluster.assert_not_called()


def test_a_throttled_poll_is_polled_again_and_other_errors_fail():
    s = sensor(mode="poke")
    s.hook.cluster_status.side_effect = [client_error("ThrottlingException"), "available"]
    with mock.patch("airflow.sdk.bases.sensor.time.sleep") as sleep:
        s.execute({})
    assert s.hook.cluster_status.call_count == 2 and sleep.call_args_list == [mock.call(30)]

    s = sensor(mode="poke")
    s.hook.cluster_status.side_effect = client_error("AccessDenied")
    with pytest.raises(ClientError):
        s.execute({})


def test_wait_until_polls_through_throttling_and_times_out():
    sleeps: list[float] = []
    answers = iter([client_error("Throttling"), False, True])

    def probe() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert polling.wait_until(probe, what="x", timeout=100, interval=10, sleep=sleeps.append) == 3
    assert sleeps == [10, 10]

    now = [0.0]
    with pytest.raises(NotReadyInTime, match="not reached within 25 s"):
        polling.wait_until(lambda: False, what="x", timeout=25, interval=10,
                             sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])


def test_botocore_retries_throttled_calls_with_backoff():
    assert clients.BOTOCORE_CONFIG == {"retries": {"mode": "standard", "max_attempts": 10}}
    assert load_dag("sparkify_setup").task_dict["create_cluster"].botocore_config == clients.BOTOCORE_CONFIG


# -- reuse and refusal, on moto's server -------------------------------------------------------------------


def create_cluster(aws: Aws, identifier: str, *, ours: bool) -> None:
    aws.client("redshift").create_cluster(
        ClusterIdentifier=identifier, NodeType="ra3.large", ClusterType="single-node", MasterUsername="admin",
        MasterUserPassword="Original1pass", Encrypted=True, PubliclyAccessible=False, IamRoles=[ROLE_ARN],
        Tags=tag_list() if ours else [{"Key": "team", "Value": "analytics"}],
    )


def config(aws: Aws, **extra: Any) -> SetupSettings:
    return SetupSettings(**{k: v for k, v in aws.conf(**extra).items() if k != "manifest_bucket"})


def reuse_operator(aws: Aws) -> CreateOrReuseClusterOperator:
    return CreateOrReuseClusterOperator(
        task_id="create_cluster", cluster_identifier=aws.names["cluster_identifier"], node_type="ra3.large",
        cluster_type="single-node", master_username="sparkify_admin",
        master_password_secret=aws.names["master_password_secret"], publicly_accessible=False, encrypted=True,
        aws_conn_id=ADMIN_CONN_ID, region_name=REGION,
    )


def test_a_paused_cluster_of_ours_is_resumed_and_given_the_stored_password(aws: Aws):
    create_cluster(aws, aws.names["cluster_identifier"], ours=True)
    aws.client("redshift").pause_cluster(ClusterIdentifier=aws.names["cluster_identifier"])

    assert reuse_operator(aws).execute({}) == {"cluster_identifier": aws.names["cluster_identifier"],
                                               "created": False}
    assert aws.cluster()["ClusterStatus"] == "available"  # moto resumes at once
    assert is_ours(aws.cluster()["Tags"])
    stored = aws.secret(aws.names["master_password_secret"])
    assert "applied_to" not in stored  # generated for a cluster that does not use it yet

    redshift = mock.Mock(wraps=aws.client("redshift"))
    result = cluster.configure_cluster(redshift, aws.client("secretsmanager"),
                                         config(aws, publicly_accessible=True), ROLE_ARN)
    assert result["changes"] == ["publicly accessible turned on", "admin password reset to the stored one"]
    assert redshift.modify_cluster.call_args_list == [
        mock.call(ClusterIdentifier=aws.names["cluster_identifier"], PubliclyAccessible=True),
        mock.call(ClusterIdentifier=aws.names["cluster_identifier"], MasterUserPassword=stored["password"]),
    ]
    assert aws.cluster()["PubliclyAccessible"] is True
    assert aws.secret(aws.names["master_password_secret"])["applied_to"] == f"cluster/{aws.names['cluster_identifier']}"

    # Again: nothing left to change.
    redshift.reset_mock()
    again = cluster.configure_cluster(redshift, aws.client("secretsmanager"),
                                        config(aws, publicly_accessible=True), ROLE_ARN)
    assert again["changes"] == []
    redshift.modify_cluster.assert_not_called()


def test_a_reused_cluster_without_the_role_gets_it_attached():
    redshift = mock.Mock()
    redshift.describe_clusters.return_value = {"Clusters": [{
        "ClusterIdentifier": "sparkify", "ClusterStatus": "available", "IamRoles": [], "Tags": [],
        "Endpoint": {"Address": "sparkify.x.us-west-2.redshift.amazonaws.com", "Port": 5439},
    }]}
    sm = mock.Mock()
    sm.describe_secret.return_value = {"ARN": "arn", "Tags": []}
    sm.get_secret_value.return_value = {"SecretString": json.dumps({"username": "u", "password": "Given1byhand"})}
    result = cluster.configure_cluster(redshift, sm, SetupSettings(cluster_identifier="sparkify"), ROLE_ARN)
    redshift.modify_cluster_iam_roles.assert_called_once_with(ClusterIdentifier="sparkify", AddIamRoles=[ROLE_ARN])
    redshift.modify_cluster.assert_not_called()  # not ours: its password is never changed
    assert result == {"host": "sparkify.x.us-west-2.redshift.amazonaws.com", "port": 5439,
                      "changes": ["role attached"]}


def test_a_cluster_the_setup_did_not_create_is_reused_only_with_its_password_and_never_deleted(aws: Aws):
    identifier = aws.names["cluster_identifier"]
    create_cluster(aws, identifier, ours=False)
    with pytest.raises(AirflowFailException, match="holds no password"):
        reuse_operator(aws).execute({})

    teardown = load_dag("sparkify_teardown")
    params = {**aws.conf(), "warehouse_kind": "provisioned", "warehouse_action": "delete"}
    with pytest.raises(NotCreatedBySetup, match="refusing to delete"):
        teardown.task_dict["inspect_warehouse"].python_callable(params=params)
    delete = DeleteOwnClusterOperator(task_id="delete_cluster", cluster_identifier=identifier,
                                                aws_conn_id=ADMIN_CONN_ID, region_name=REGION)
    with pytest.raises(NotCreatedBySetup):
        delete.execute({})
    assert aws.cluster()["ClusterStatus"] == "available"
    assert not is_ours(aws.cluster()["Tags"])


def test_a_role_secret_or_bucket_the_setup_did_not_create_is_left_alone(aws: Aws):
    iam, sm, s3 = aws.client("iam"), aws.client("secretsmanager"), aws.client("s3")
    name = aws.names["role_name"]
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(None)))
    with pytest.raises(NotCreatedBySetup):
        ensure_role(iam, name=name, trust=trust_policy(None), policy={"Statement": []})
    with pytest.raises(NotCreatedBySetup):
        remove_role(iam, name)
    assert iam.get_role(RoleName=name)

    secret = aws.names["master_password_secret"]
    sm.create_secret(Name=secret, SecretString="Mine1secret")
    with pytest.raises(NotCreatedBySetup):
        secrets.write_secret(sm, secret, {"password": "x"}, "")
    assert secrets.remove_secret(sm, secret, 7).startswith("kept")
    master, generated = secrets.get_master(sm, secret, "admin", create=True)  # a hand-made plain password
    assert (master.password, generated) == ("Mine1secret", False)

    bucket = aws.names["manifest_bucket"]
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    assert ensure_bucket(s3, bucket, REGION, "sparkify-manifests") is False
    assert remove_bucket(s3, bucket).startswith("kept")
    assert remove_role(iam, "no-such-role") == "absent"
    assert secrets.remove_secret(sm, "no/such/secret", 7) == "absent"


def test_the_registered_connection_is_used_only_when_airflow_has_none(monkeypatch):
    import os

    built = {"conn_type": "postgres", "host": "db.example", "login": "u", "password": "Not1real", "schema": "d"}
    monkeypatch.delenv("AIRFLOW_CONN_WH_SETUP_TEST", raising=False)
    with connections.connection_in_env("wh_setup_test", built):
        assert json.loads(os.environ["AIRFLOW_CONN_WH_SETUP_TEST"]) == built
    assert "AIRFLOW_CONN_WH_SETUP_TEST" not in os.environ

    monkeypatch.setenv("AIRFLOW_CONN_WH_SETUP_TEST", "postgresql://me@localhost/mine")
    with connections.connection_in_env("wh_setup_test", built):
        assert os.environ["AIRFLOW_CONN_WH_SETUP_TEST"] == "postgresql://me@localhost/mine"

    with pytest.raises(AirflowFailException, match="none was registered"):
        with connections.connection_in_env("wh_setup_missing", None):
            pass


# -- Redshift Serverless, by the exact API calls (botocore Stubber) -------------------------------------------


@pytest.fixture
def serverless():
    client = boto3.client("redshift-serverless", region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret-key")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


NS_ARN = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:namespace/1"
WG_ARN = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/1"
ENDPOINT = {"address": "sparkify.123456789012.us-west-2.redshift-serverless.amazonaws.com", "port": 5439}


def namespace(status: str = "AVAILABLE", roles: list[str] | None = None) -> dict[str, Any]:
    return {"namespace": {"namespaceName": "sparkify", "namespaceArn": NS_ARN, "status": status,
                          "iamRoles": roles if roles is not None else [ROLE_ARN]}}


def workgroup(status: str = "AVAILABLE") -> dict[str, Any]:
    wg = {"workgroupName": "sparkify", "workgroupArn": WG_ARN, "namespaceName": "sparkify", "status": status,
          "publiclyAccessible": False}
    if status == "AVAILABLE":
        wg["endpoint"] = ENDPOINT
    return {"workgroup": wg}


def not_found(stub: Stubber, operation: str, params: dict[str, Any]) -> None:
    stub.add_client_error(operation, service_error_code="ResourceNotFoundException", http_status_code=404,
                          expected_params=params)


def ensure(client: Any, sleeps: list[float], **kwargs: Any) -> ServerlessState:
    return ensure_serverless(
        client, namespace="sparkify", workgroup="sparkify", admin_username="sparkify_admin",
        new_password=lambda: "Known1password", db_name="sparkify", role_arn=ROLE_ARN, base_capacity=8,
        publicly_accessible=False, sleep=sleeps.append, **kwargs,
    )


def test_serverless_namespace_and_workgroup_are_created_by_these_calls(serverless):
    client, stub = serverless
    ns, wg = {"namespaceName": "sparkify"}, {"workgroupName": "sparkify"}
    not_found(stub, "get_namespace", ns)
    stub.add_response("create_namespace", namespace("MODIFYING"), {
        "namespaceName": "sparkify", "adminUsername": "sparkify_admin", "adminUserPassword": "Known1password",
        "dbName": "sparkify", "defaultIamRoleArn": ROLE_ARN, "iamRoles": [ROLE_ARN], "tags": TAGS,
    })
    stub.add_response("get_namespace", namespace("MODIFYING"), ns)
    stub.add_response("get_namespace", namespace(), ns)
    not_found(stub, "get_workgroup", wg)
    stub.add_response("create_workgroup", workgroup("CREATING"), {
        "workgroupName": "sparkify", "namespaceName": "sparkify", "baseCapacity": 8, "publiclyAccessible": False,
        "tags": TAGS,
    })
    stub.add_response("get_workgroup", workgroup("CREATING"), wg)
    stub.add_client_error("get_workgroup", service_error_code="ThrottlingException", http_status_code=400,
                          expected_params=wg)
    stub.add_response("get_workgroup", workgroup(), wg)

    sleeps: list[float] = []
    state = ensure(client, sleeps)
    assert state == ServerlessState(ENDPOINT["address"], 5439, namespace_created=True,
                                              workgroup_created=True, namespace_ours=True)
    assert sleeps == [15, 15, 15]  # namespace modifying; workgroup creating; throttled


def test_an_existing_serverless_namespace_is_reused_given_the_role_and_the_stored_password(serverless):
    client, stub = serverless
    ns, wg = {"namespaceName": "sparkify"}, {"workgroupName": "sparkify"}
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    stub.add_response("get_namespace", namespace(roles=[other]), ns)
    stub.add_response("list_tags_for_resource", {"tags": TAGS}, {"resourceArn": NS_ARN})
    stub.add_response("get_namespace", namespace(roles=[other]), ns)
    stub.add_response("update_namespace", namespace("MODIFYING"),
                      {"namespaceName": "sparkify", "iamRoles": [other, ROLE_ARN], "defaultIamRoleArn": ROLE_ARN})
    stub.add_response("get_namespace", namespace(), ns)
    stub.add_response("update_namespace", namespace("MODIFYING"), {
        "namespaceName": "sparkify", "adminUsername": "sparkify_admin", "adminUserPassword": "Stored1password"})
    stub.add_response("get_namespace", namespace(), ns)
    stub.add_response("get_workgroup", workgroup(), wg)
    stub.add_response("get_workgroup", workgroup(), wg)

    sleeps: list[float] = []
    state = ensure(client, sleeps, reset_password="Stored1password")
    assert (state.namespace_created, state.workgroup_created, state.host) == (False, False, ENDPOINT["address"])
    assert sleeps == []


def test_serverless_teardown_deletes_workgroup_then_namespace_by_these_calls(serverless):
    client, stub = serverless
    ns, wg = {"namespaceName": "sparkify"}, {"workgroupName": "sparkify"}
    stub.add_response("get_workgroup", workgroup(), wg)
    stub.add_response("list_tags_for_resource", {"tags": TAGS}, {"resourceArn": WG_ARN})
    stub.add_response("get_namespace", namespace(), ns)
    stub.add_response("list_tags_for_resource", {"tags": TAGS}, {"resourceArn": NS_ARN})
    stub.add_response("get_workgroup", workgroup(), wg)
    stub.add_response("delete_workgroup", workgroup("DELETING"), wg)
    stub.add_response("get_workgroup", workgroup("DELETING"), wg)
    not_found(stub, "get_workgroup", wg)
    stub.add_response("get_namespace", namespace(), ns)
    stub.add_response("delete_namespace", namespace("DELETING"),
                      {"namespaceName": "sparkify", "finalSnapshotName": "sparkify-final-1"})
    not_found(stub, "get_namespace", ns)

    sleeps: list[float] = []
    done = delete_serverless(client, namespace="sparkify", workgroup="sparkify",
                                       final_snapshot="sparkify-final-1", sleep=sleeps.append)
    assert done == ["workgroup sparkify deleted", "namespace sparkify deleted, final snapshot sparkify-final-1"]
    assert sleeps == [15]


def test_serverless_teardown_refuses_a_workgroup_the_setup_did_not_create(serverless):
    client, stub = serverless
    stub.add_response("get_workgroup", workgroup(), {"workgroupName": "sparkify"})
    stub.add_response("list_tags_for_resource", {"tags": [{"key": "team", "value": "bi"}]}, {"resourceArn": WG_ARN})
    with pytest.raises(NotCreatedBySetup, match="workgroup sparkify"):
        delete_serverless(client, namespace="sparkify", workgroup="sparkify", final_snapshot=None)


def test_the_setup_dags_serverless_task_stores_and_uses_one_password(aws: Aws, serverless):
    """The DAG's create_serverless task: Secrets Manager on moto, Redshift Serverless stubbed."""
    client, stub = serverless
    ns, wg = {"namespaceName": "sparkify"}, {"workgroupName": "sparkify"}
    password = Capture()
    not_found(stub, "get_namespace", ns)  # the task's own look-up
    not_found(stub, "get_namespace", ns)
    stub.add_response("create_namespace", namespace(), {
        "namespaceName": "sparkify", "adminUsername": "sparkify_admin", "adminUserPassword": password,
        "dbName": "sparkify", "defaultIamRoleArn": ROLE_ARN, "iamRoles": [ROLE_ARN], "tags": TAGS,
    })
    stub.add_response("get_namespace", namespace(), ns)
    not_found(stub, "get_workgroup", wg)
    stub.add_response("create_workgroup", workgroup("CREATING"), {
        "workgroupName": "sparkify", "namespaceName": "sparkify", "baseCapacity": 8, "publiclyAccessible": False,
        "tags": TAGS,
    })
    stub.add_response("get_workgroup", workgroup(), wg)

    module = __import__("sparkify_setup")
    params = {**aws.conf(), "warehouse_kind": "serverless"}
    with mock.patch.object(clients, "serverless", return_value=client):
        result = module.dag.task_dict["create_serverless"].python_callable(ROLE_ARN, params=params)
    assert result == {"host": ENDPOINT["address"], "port": 5439}
    stored = aws.secret(aws.names["master_password_secret"])
    assert stored["password"] == password.value and len(password.value) == 32
    assert stored["applied_to"] == "namespace/sparkify"


def test_the_default_manifest_bucket_is_named_after_the_account_and_source_region(aws: Aws):
    params = {**aws.conf(), "manifest_bucket": ""}
    setup, teardown = load_dag("sparkify_setup"), load_dag("sparkify_teardown")
    name = setup.task_dict["ensure_manifest_bucket"].python_callable(params=params)
    assert name == f"sparkify-manifests-{ACCOUNT}-{REGION}"
    s3 = aws.client("s3")
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == REGION
    assert s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"][0]["Filter"] == {
        "Prefix": "sparkify-manifests/"}
    s3.put_object(Bucket=name, Key="sparkify-manifests/sparkify_etl/run/Stage_songs-0.manifest", Body=b"{}")
    assert teardown.task_dict["remove_manifest_bucket"].python_callable(params=params) == "deleted"
    assert teardown.task_dict["remove_manifest_bucket"].python_callable(params=params) == "absent"
