"""make aws-check, as far as it can go here: its refusal without credentials, its plan and cost, its
confirmation, its inventory and report, on moto's server with fake credentials. The run itself
(setup, loads, comparison, teardown on a real account) cannot run here: docs/aws.md says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import boto3
import pytest

from sparkify_aws_check import check, credentials, expected
from sparkify_aws_check.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's


def _no_aws_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no AWS credentials anywhere boto3 looks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW_CONN_"))}
    env.update({"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
                "CONNECTIONS_FILE": str(tmp_path / "connections.yaml"),
                "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tools")])})
    return env


def test_without_credentials_it_stops_at_once(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sparkify_aws_check"], env=_no_aws_env(tmp_path), cwd=ROOT,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""  # no plan, no question
    assert result.stderr.startswith("error: no AWS credentials: make aws-check creates a Redshift warehouse")
    assert "Set AWS_PROFILE, or add an 'aws_default' connection to connections.yaml" in result.stderr
    assert result.stderr.rstrip().endswith("Nothing was created.")


def test_make_aws_check_runs_the_tool(tmp_path):
    """The Makefile target is wired to the tool (make's own exit status is 2 for any failure)."""
    result = subprocess.run(["make", "--no-print-directory", "-s", "aws-check"], env=_no_aws_env(tmp_path),
                            cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode != 0
    assert "error: no AWS credentials" in result.stderr


@pytest.fixture
def fake_account(moto_server, monkeypatch, tmp_path):
    """boto3's default credentials are moto's fake ones, every client goes to moto's server."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    return moto_server


PROVISIONED_PLAN = """\
make aws-check acts in AWS account 123456789012 as arn:aws:sts::123456789012:user/moto
  (credentials: boto3's default credentials (env))

It will create, in us-west-2 (the role is global), through sparkify_setup:
  - Redshift cluster 'sparkify' (1 x ra3.large, encrypted, not publicly accessible)
  - IAM role 'sparkify-redshift-copy' with one inline policy (read s3://udacity-dend, its manifests)
  - S3 bucket 'sparkify-manifests-123456789012-us-west-2' for the COPY manifests (in us-west-2)
  - Secrets Manager secrets 'sparkify/redshift/master', 'airflow/connections/redshift', 'airflow/connections/aws'
  - the pipeline's tables in schema 'public' and the roles sparkify_analyst, sparkify_loader

Then it loads [2018-11-04 00:00, 2018-11-05 00:00) UTC: 24 hourly sparkify_etl runs (airflow dags test) \
of s3://udacity-dend/log_data/2018/11/2018-11-04-events.json
  with the songs under s3://udacity-dend/song_data/A/A/, downloads the same objects,
  computes the expected star tables with tests/reference.py's rules and compares every one.

Last, sparkify_teardown removes everything above: no final snapshot, secrets deleted at once.

Estimated cost: $0.54 to $1.08 ($0.54 per node-hour while it exists; secrets $0.4 a month each, prorated; \
S3 and the download of a few MB: under $0.01), for 1 to 2 hours. List prices as docs/aws.md quotes them; \
a check stopped half-way keeps billing until sparkify_teardown removes what is left (docs/aws.md, "Back to nothing").
"""


def test_the_plan_and_a_no_create_nothing(fake_account, tmp_path, capsys):
    asked = []

    def ask(question: str) -> str:
        asked.append(question)
        return "no"

    code = check.main(["--connections-file", str(tmp_path / "none.yaml")], environ={}, ask=ask)
    out = capsys.readouterr().out
    assert code == 1
    assert out == PROVISIONED_PLAN + "\nNot confirmed: nothing was created.\n"
    assert asked == ["Create these resources and run the check? Type 'yes' to go on: "]
    # The plan's only AWS call was STS's GetCallerIdentity: nothing of the plan exists on moto.
    client = lambda service: boto3.client(service, region_name="us-west-2")  # noqa: E731
    assert "sparkify-redshift-copy" not in [r["RoleName"] for r in client("iam").list_roles()["Roles"]]
    assert "sparkify" not in [c["ClusterIdentifier"] for c in client("redshift").describe_clusters()["Clusters"]]
    assert not [b for b in client("s3").list_buckets()["Buckets"] if b["Name"].startswith("sparkify-manifests-")]


def test_an_empty_answer_or_no_terminal_is_a_no(fake_account, tmp_path, capsys):
    def eof(question: str) -> str:
        raise EOFError

    assert check.main(["--connections-file", str(tmp_path / "x")], environ={}, ask=eof) == 1
    assert capsys.readouterr().out.endswith("Not confirmed: nothing was created.\n")


def test_yes_goes_on_without_asking(fake_account, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the check's Airflow home, which it keeps
    started = []
    monkeypatch.setattr(check.Check, "run", lambda self: started.append(self.plan) or 0)

    def never(question: str) -> str:
        raise AssertionError("YES=1 must not ask")

    assert check.main(["--connections-file", str(tmp_path / "x")], environ={"YES": "1", "DAY": "2018-11-15",
                                                                            "SONG_PREFIX": "song_data/A/B/"},
                      ask=never) == 0
    (plan,) = started
    assert (plan.day, plan.song_prefix, plan.account) == (date(2018, 11, 15), "song_data/A/B", ACCOUNT)
    assert "YES=1: going on without asking." in capsys.readouterr().out


def test_serverless_plan_and_cost():
    plan = Plan(account=ACCOUNT, identity="arn:aws:iam::123456789012:user/me", credentials_source="x",
                warehouse_kind="serverless", open_port=True, public_ip="203.0.113.7")
    text = plan.text()
    assert "  - Redshift Serverless namespace and workgroup 'sparkify' (8 RPU base capacity)\n" in text
    assert ("  - an inbound rule for 203.0.113.7/32 on port 5439 in the default VPC's default security group "
            "(removed at the end)\n") in text
    # 8 RPU x $0.375 for a quarter to three quarters of an hour of compute, plus three secrets prorated.
    assert "Estimated cost: $0.75 to $2.25 ($0.375 per RPU-hour of active compute;" in text
    assert plan.setup.publicly_accessible is True and plan.setup.warehouse_kind == "serverless"


def test_credentials_from_the_connections_file(tmp_path):
    path = tmp_path / "connections.yaml"
    path.write_text("aws_default:\n  conn_type: aws\n  login: AKIAEXAMPLE\n  password: s3cret\n"
                    "  extra:\n    aws_session_token: tok\n")
    found = credentials.find(path)
    assert (found.access_key, found.secret_key, found.token) == ("AKIAEXAMPLE", "s3cret", "tok")
    assert found.source == f"{path} (aws_default)"
    assert found.env() == {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cret",
                           "AWS_SESSION_TOKEN": "tok"}


def test_inventory_finds_what_exists_on_moto(fake_account):
    import uuid

    uid = uuid.uuid4().hex[:8]  # moto's server is shared: fresh names
    session = boto3.Session(region_name="us-west-2")
    # Only the role and one secret exist.
    iam, secrets = session.client("iam"), session.client("secretsmanager")
    iam.create_role(RoleName=f"aws-check-{uid}", AssumeRolePolicyDocument="{}")
    secrets.create_secret(Name=f"aws-check/{uid}", SecretString="x")

    class OnePlan:
        region, manifest_bucket = "us-west-2", f"sparkify-manifests-{uid}"

        @property
        def setup(self):
            from sparkify.aws.settings import SetupSettings

            return SetupSettings(role_name=f"aws-check-{uid}", master_password_secret=f"aws-check/{uid}",
                                 cluster_identifier=f"aws-check-{uid}", connections_prefix=f"aws-check-{uid}")

    found = expected.inventory(session, OnePlan())
    assert found == {
        f"Redshift cluster aws-check-{uid}": False,
        f"IAM role aws-check-{uid}": True,
        f"secret aws-check/{uid}": True,
        f"secret aws-check-{uid}/redshift": False,
        f"secret aws-check-{uid}/aws": False,
        f"S3 bucket sparkify-manifests-{uid}": False,
    }
    secrets.delete_secret(SecretId=f"aws-check/{uid}", RecoveryWindowInDays=7)  # scheduled: gone for the check
    assert expected.inventory(session, OnePlan())[f"secret aws-check/{uid}"] is False


def test_the_report_says_what_was_found_and_removed():
    before = {"Redshift cluster sparkify": True, "IAM role r": True, "secret s": False}
    differences = {"songplays": "songplays: 3 row(s), equal",
                   "users": "users: expected 2 row(s), found 1\n  missing:    (7, 'A', 'B', 'F', 'free')"}
    report = expected.report(differences, before, {"Redshift cluster sparkify": False, "IAM role r": True,
                                                   "secret s": False})
    assert not report.ok
    assert report.text == (
        "\nWhat the check found:\n"
        "  songplays: 3 row(s), equal\n"
        "  users: expected 2 row(s), found 1\n    missing:    (7, 'A', 'B', 'F', 'free')\n"
        "What the teardown removed:\n  Redshift cluster sparkify\n"
        "LEFT BEHIND (remove by hand, or run sparkify_teardown again):\n  IAM role r\n"
        "aws-check: FAILED"
    )
    passed = expected.report({"songplays": "songplays: 3 row(s), equal"}, before, dict.fromkeys(before, False))
    assert passed.ok and passed.text.endswith("aws-check: PASSED")


def test_a_run_is_judged_by_its_state_not_the_commands_exit_status():
    listing = ('some log line\n[{"dag_id": "sparkify_etl", "run_id": "a", "state": "success", '
               '"start_date": "2026-12-07T06:00:00+00:00"}, {"dag_id": "sparkify_etl", "run_id": "b", '
               '"state": "failed", "start_date": "2026-12-07T06:05:00+00:00"}]')
    assert check.latest_state(listing) == "failed"
    assert check.latest_state("[]") == "not run"
