"""The acceptance run: credentials, plan, confirmation, setup, one day's loads, comparison, teardown.

``python -m sparkify_aws_check [--yes] [--serverless] [--day 2018-11-04] [--song-prefix song_data/A/A]
[--open-port]`` (``make aws-check``, with ``YES=1``, ``WAREHOUSE_KIND``, ``DAY``, ``SONG_PREFIX``,
``OPEN_PORT=1``). Exit status: 0 when every star table equals the expected one and the teardown left
nothing; 1 otherwise (or when not confirmed); 2 when it could not start (no credentials, say).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sparkify_aws_check import credentials, expected
from sparkify_aws_check.plan import DEFAULT_DAY, DEFAULT_SONG_PREFIX, SOURCE_BUCKET, SOURCE_REGION, Plan

ROOT = Path(__file__).resolve().parents[2]
REDSHIFT_PORT = 5439


class CheckError(Exception):
    """A step that failed: the message says which and why."""


def say(line: str = "") -> None:
    print(line, flush=True)


def parse(argv: list[str] | None, environ: dict[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make aws-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--yes", action="store_true", default=environ.get("YES", "") in ("1", "yes", "true"),
                        help="do not ask (YES=1)")
    parser.add_argument("--warehouse-kind", choices=("provisioned", "serverless"),
                        default=environ.get("WAREHOUSE_KIND") or "provisioned")
    parser.add_argument("--day", type=date.fromisoformat, default=environ.get("DAY") or DEFAULT_DAY.isoformat())
    parser.add_argument("--song-prefix", default=environ.get("SONG_PREFIX") or DEFAULT_SONG_PREFIX)
    parser.add_argument("--open-port", action="store_true", default=environ.get("OPEN_PORT", "") in ("1", "yes"),
                        help="make the warehouse public and open port 5439 to this machine only (OPEN_PORT=1)")
    parser.add_argument("--connections-file", type=Path,
                        default=Path(environ.get("CONNECTIONS_FILE") or ROOT / "connections.yaml"))
    args = parser.parse_args(argv)
    if isinstance(args.day, str):
        args.day = date.fromisoformat(args.day)
    args.song_prefix = args.song_prefix.strip("/")
    return args


def boto3_session(creds: credentials.Credentials, region: str):
    import boto3

    return boto3.Session(aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                         aws_session_token=creds.token, region_name=region)


def public_ip() -> str:
    with urllib.request.urlopen("https://checkip.amazonaws.com", timeout=10) as response:  # noqa: S310
        return response.read().decode().strip()


def confirm(plan: Plan, yes: bool, ask: Callable[[str], str] = input) -> bool:
    say(plan.text())
    say()
    if yes:
        say("YES=1: going on without asking.")
        return True
    try:
        answer = ask("Create these resources and run the check? Type 'yes' to go on: ")
    except EOFError:
        answer = ""
    return answer.strip().lower() == "yes"


def latest_state(listing: str) -> str:
    """The state of the most recently started run in ``airflow dags list-runs -o json``'s output."""
    start = listing.find("[")
    runs = json.loads(listing[start:]) if start >= 0 else []
    if not runs:
        return "not run"
    return str(max(runs, key=lambda r: str(r.get("start_date") or "")).get("state"))


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None,
         ask: Callable[[str], str] = input) -> int:
    environ = dict(os.environ if environ is None else environ)
    args = parse(argv, environ)
    try:
        creds = credentials.find(args.connections_file if args.connections_file.is_file() else None)
    except credentials.NoCredentials as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    session = boto3_session(creds, SOURCE_REGION)
    try:
        identity = session.client("sts").get_caller_identity()
    except Exception as err:
        print(f"error: the AWS credentials from {creds.source} do not work ({err}). Nothing was created.",
              file=sys.stderr)
        return 2
    plan = Plan(account=identity["Account"], identity=identity["Arn"], credentials_source=creds.source,
                warehouse_kind=args.warehouse_kind, day=args.day, song_prefix=args.song_prefix,
                open_port=args.open_port, public_ip=public_ip() if args.open_port else None)
    if not confirm(plan, args.yes, ask):
        say("Not confirmed: nothing was created.")
        return 1
    return Check(plan, creds, session).run()


class Check:
    """One acceptance run; every step said as it starts, the teardown always attempted."""

    def __init__(self, plan: Plan, creds: credentials.Credentials, session: Any) -> None:
        self.plan, self.creds, self.session = plan, creds, session
        self.home = Path(tempfile.mkdtemp(prefix="sparkify-aws-check-"))
        self.connections: dict[str, str] = {}
        self.opened_rule: dict[str, Any] | None = None

    # -- Airflow, as `airflow dags test` in a private AIRFLOW_HOME ---------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "SPARKIFY_", "AWS_"))}
        env.update(self.creds.env())
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AWS_DEFAULT_REGION": self.plan.region,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            **self.connections,
        })
        return env

    def airflow(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env(), cwd=ROOT,
                                capture_output=True, text=True)
        log = self.home / "airflow-commands.log"
        with log.open("a") as out:
            out.write(f"$ airflow {' '.join(args)}\n{result.stdout}\n{result.stderr}\n")
        if result.returncode != 0:
            raise CheckError(f"`airflow {' '.join(args[:3])}` failed (exit {result.returncode}); its output is in "
                             f"{log}:\n{result.stderr[-2000:] or result.stdout[-2000:]}")
        return result.stdout

    def dag_test(self, dag_id: str, conf: dict[str, Any], logical_date: str | None = None) -> None:
        """One run of ``dag_id`` through ``airflow dags test``; a run that did not succeed fails the step
        (the command's exit status alone does not say)."""
        self.airflow("dags", "test", dag_id, *([logical_date] if logical_date else []), "--conf", json.dumps(conf))
        state = latest_state(self.airflow("dags", "list-runs", dag_id, "-o", "json"))
        if state != "success":
            raise CheckError(f"{dag_id} ended {state}: its task logs are under {self.home / 'logs'}")

    # -- the steps ---------------------------------------------------------------------------------------

    def setup_conf(self) -> dict[str, Any]:
        return {"warehouse_kind": self.plan.warehouse_kind, "region": self.plan.region,
                "publicly_accessible": self.plan.open_port}

    def open_port(self) -> None:
        """Port 5439 of the default VPC's default security group, for this machine's address only."""
        ec2 = self.session.client("ec2", region_name=self.plan.region)
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise CheckError(f"no default VPC in {self.plan.region}: run the check from inside the warehouse's VPC")
        group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]},
                                                      {"Name": "group-name", "Values": ["default"]}])
        group_id = group["SecurityGroups"][0]["GroupId"]
        rule = {"GroupId": group_id, "IpPermissions": [{
            "IpProtocol": "tcp", "FromPort": REDSHIFT_PORT, "ToPort": REDSHIFT_PORT,
            "IpRanges": [{"CidrIp": f"{self.plan.public_ip}/32", "Description": "make aws-check"}]}]}
        try:
            ec2.authorize_security_group_ingress(**rule)
        except Exception as err:
            if "InvalidPermission.Duplicate" not in str(err):
                raise
            say(f"  port {REDSHIFT_PORT} was already open to {self.plan.public_ip}/32 in {group_id}: left as it is")
            return
        self.opened_rule = rule
        say(f"  opened port {REDSHIFT_PORT} to {self.plan.public_ip}/32 in {group_id}")

    def read_connections(self) -> None:
        """The pipeline's two connections, as the setup stored them in Secrets Manager (never printed)."""
        secrets = self.session.client("secretsmanager", region_name=self.plan.region)
        s = self.plan.setup
        for conn_id in (s.redshift_conn_id, s.aws_conn_id):
            value = secrets.get_secret_value(SecretId=s.connection_secret(conn_id))["SecretString"]
            self.connections[f"AIRFLOW_CONN_{conn_id.upper()}"] = value

    def etl_conf(self) -> dict[str, Any]:
        return {"s3_bucket": SOURCE_BUCKET, "region": SOURCE_REGION, "song_prefix": self.plan.song_prefix,
                "manifest_bucket": self.plan.manifest_bucket}

    def load_day(self) -> None:
        start, _ = self.plan.window
        for hour in range(24):
            begin = start + timedelta(hours=hour)
            end = begin + timedelta(hours=1)
            say(f"  sparkify_etl [{begin:%Y-%m-%dT%H:%M}, {end:%H:%M})")
            # `dags test` gives a logical date L the interval that ends at L (as a manual run).
            self.dag_test("sparkify_etl", self.etl_conf(), end.strftime("%Y-%m-%dT%H:%M:%S+00:00"))

    def compare(self) -> dict[str, str]:
        start, end = self.plan.window
        data = self.home / "source"
        s3 = self.session.client("s3", region_name=SOURCE_REGION)
        counts = expected.download(s3, SOURCE_BUCKET, self.plan.events_key, self.plan.song_prefix, data)
        say(f"  downloaded {counts['events']} events file and {counts['songs']} song files")
        os.environ.update(self.connections)  # the comparison reads the tables through the same connection
        try:
            return expected.compare(data, start, end, self.plan.setup.redshift_conn_id)
        finally:
            for name in self.connections:
                os.environ.pop(name, None)

    def teardown(self) -> tuple[dict[str, bool], dict[str, bool]]:
        before = expected.inventory(self.session, self.plan)
        conf = {**self.setup_conf(), "final_snapshot": False, "secret_recovery_days": 0}
        try:
            self.dag_test("sparkify_teardown", conf)
        finally:
            if self.opened_rule:
                self.session.client("ec2", region_name=self.plan.region).revoke_security_group_ingress(
                    **self.opened_rule)
                say(f"  closed port {REDSHIFT_PORT} to {self.plan.public_ip}/32 again")
        return before, expected.inventory(self.session, self.plan)

    def run(self) -> int:
        differences: dict[str, str] | None = None
        failure = None
        try:
            say(f"• Airflow's private home: {self.home}")
            self.airflow("db", "migrate")
            if self.plan.open_port:
                say("• Opening the warehouse's port to this machine")
                self.open_port()
            say("• sparkify_setup (5-10 minutes)")
            self.dag_test("sparkify_setup", self.setup_conf())
            self.read_connections()
            say("• Loading the day, hour by hour")
            self.load_day()
            say("• Comparing every star table with tests/reference.py's expected rows")
            differences = self.compare()
        except Exception as err:  # the teardown runs whatever failed
            failure = err
            say(f"FAILED: {err}")
        say("• sparkify_teardown")
        try:
            before, after = self.teardown()
        except Exception as err:
            say(f"FAILED: the teardown: {err}\n  Remove what is left with `airflow dags trigger sparkify_teardown`.")
            return 1
        report = expected.report(differences, before, after)
        say(report.text)
        return 0 if failure is None and report.ok else 1
