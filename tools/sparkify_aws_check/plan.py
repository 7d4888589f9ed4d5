"""What the check will create, do and cost, stated before it asks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sparkify.aws.settings import SetupSettings

SOURCE_BUCKET = "udacity-dend"
SOURCE_REGION = "us-west-2"
DEFAULT_DAY = date(2018, 11, 4)
DEFAULT_SONG_PREFIX = "song_data/A/A"

# On-demand list prices in us-west-2, as docs/aws.md ("What it costs") quotes them: check the live
# pages before relying on them.
RA3_LARGE_NODE_HOUR = 0.54
SERVERLESS_RPU_HOUR = 0.375
SECRET_MONTH = 0.40
HOURS_PER_MONTH = 730
# How long the warehouse exists during the check: setup (5-10 min waiting for the cluster), 24
# hourly loads through `airflow dags test` (about a minute each) and teardown (5-10 min). An
# estimate to size the cost, not a measurement: at most HOURS_HIGH if a step is slow.
HOURS_LOW, HOURS_HIGH = 1.0, 2.0
# Serverless bills only active compute: the loads and checks, well under the warehouse's lifetime.
SERVERLESS_ACTIVE_HOURS_LOW, SERVERLESS_ACTIVE_HOURS_HIGH = 0.25, 0.75


@dataclass(frozen=True)
class Plan:
    account: str
    identity: str
    credentials_source: str
    warehouse_kind: str = "provisioned"
    region: str = SOURCE_REGION
    day: date = DEFAULT_DAY
    song_prefix: str = DEFAULT_SONG_PREFIX
    open_port: bool = False
    public_ip: str | None = None

    @property
    def setup(self) -> SetupSettings:
        return SetupSettings(warehouse_kind=self.warehouse_kind, region=self.region, source_region=SOURCE_REGION,
                             publicly_accessible=self.open_port)

    @property
    def manifest_bucket(self) -> str:
        return f"sparkify-manifests-{self.account}-{SOURCE_REGION}"

    @property
    def window(self) -> tuple[datetime, datetime]:
        start = datetime(self.day.year, self.day.month, self.day.day)
        return start, start + timedelta(days=1)

    @property
    def events_key(self) -> str:
        return f"log_data/{self.day:%Y}/{self.day:%m}/{self.day:%Y-%m-%d}-events.json"

    def cost(self) -> tuple[float, float]:
        """The estimated cost in US dollars, low and high."""
        secrets = 3 * SECRET_MONTH / HOURS_PER_MONTH
        if self.warehouse_kind == "serverless":
            rpu = self.setup.base_capacity * SERVERLESS_RPU_HOUR
            return (rpu * SERVERLESS_ACTIVE_HOURS_LOW + secrets * HOURS_LOW,
                    rpu * SERVERLESS_ACTIVE_HOURS_HIGH + secrets * HOURS_HIGH)
        nodes = self.setup.number_of_nodes * RA3_LARGE_NODE_HOUR
        return nodes * HOURS_LOW + secrets * HOURS_LOW, nodes * HOURS_HIGH + secrets * HOURS_HIGH

    def text(self) -> str:
        s = self.setup
        low, high = self.cost()
        if s.warehouse_kind == "serverless":
            warehouse = (f"Redshift Serverless namespace and workgroup '{s.serverless_workgroup}' "
                         f"({s.base_capacity} RPU base capacity)")
            price = f"${SERVERLESS_RPU_HOUR} per RPU-hour of active compute"
        else:
            warehouse = (f"Redshift cluster '{s.cluster_identifier}' ({s.number_of_nodes} x {s.node_type}, "
                         "encrypted" + (", publicly accessible" if self.open_port else ", not publicly accessible")
                         + ")")
            price = f"${RA3_LARGE_NODE_HOUR} per node-hour while it exists"
        start, end = self.window
        lines = [
            f"make aws-check acts in AWS account {self.account} as {self.identity}",
            f"  (credentials: {self.credentials_source})",
            "",
            f"It will create, in {s.region} (the role is global), through sparkify_setup:",
            f"  - {warehouse}",
            f"  - IAM role '{s.role_name}' with one inline policy (read s3://{SOURCE_BUCKET}, its manifests)",
            f"  - S3 bucket '{self.manifest_bucket}' for the COPY manifests (in {SOURCE_REGION})",
            f"  - Secrets Manager secrets '{s.master_password_secret}', "
            f"'{s.connection_secret(s.redshift_conn_id)}', '{s.connection_secret(s.aws_conn_id)}'",
            "  - the pipeline's tables in schema 'public' and the roles sparkify_analyst, sparkify_loader",
        ]
        if self.open_port:
            lines.append(f"  - an inbound rule for {self.public_ip or 'this machine'}/32 on port 5439 in the "
                         "default VPC's default security group (removed at the end)")
        lines += [
            "",
            f"Then it loads [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC: 24 hourly sparkify_etl runs "
            f"(airflow dags test) of s3://{SOURCE_BUCKET}/{self.events_key}",
            f"  with the songs under s3://{SOURCE_BUCKET}/{self.song_prefix}/, downloads the same objects,",
            "  computes the expected star tables with tests/reference.py's rules and compares every one.",
            "",
            "Last, sparkify_teardown removes everything above: no final snapshot, secrets deleted at once.",
            "",
            f"Estimated cost: ${low:.2f} to ${high:.2f} ({price}; secrets ${SECRET_MONTH} a month each, "
            f"prorated; S3 and the download of a few MB: under $0.01), for {HOURS_LOW:g} to {HOURS_HIGH:g} hours. "
            "List prices as docs/aws.md quotes them; a check stopped half-way keeps billing until "
            "sparkify_teardown removes what is left (docs/aws.md, \"Back to nothing\").",
        ]
        return "\n".join(lines)
