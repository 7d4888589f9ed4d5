"""Whose AWS account the check acts in: the ``aws_default`` connection of connections.yaml (the
setup's ``admin_aws_conn_id``), else boto3's default credentials (``AWS_PROFILE``, the environment,
``~/.aws``, an instance role). Found without a network call; the secret values never printed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ADMIN_CONN_ID = "aws_default"


class NoCredentials(Exception):
    """No AWS credentials anywhere the check looks: it stops before anything else."""


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None
    source: str  # where they came from, for the plan (never a secret)

    def env(self) -> dict[str, str]:
        """The environment that hands them to Airflow's processes (boto3's default chain reads it)."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        if self.token:
            env["AWS_SESSION_TOKEN"] = self.token
        return env


def from_connections_file(path: Path | None) -> Credentials | None:
    """``aws_default``'s keys in connections.yaml (Airflow's local-filesystem backend format)."""
    if path is None or not path.is_file():
        return None
    import yaml

    document = yaml.safe_load(path.read_text()) or {}
    conn = document.get(ADMIN_CONN_ID) if isinstance(document, dict) else None
    if not isinstance(conn, dict) or not conn.get("login") or not conn.get("password"):
        return None
    extra = conn.get("extra") or {}
    token = extra.get("aws_session_token") if isinstance(extra, dict) else None
    return Credentials(str(conn["login"]), str(conn["password"]), token, f"{path} ({ADMIN_CONN_ID})")


def find(connections_file: Path | None) -> Credentials:
    """The credentials the check uses, or :class:`NoCredentials` saying where it looked."""
    found = from_connections_file(connections_file)
    if found:
        return found
    import botocore.session

    session = botocore.session.get_session()
    resolved = session.get_credentials()
    if resolved is not None:
        frozen = resolved.get_frozen_credentials()
        if frozen.access_key and frozen.secret_key:
            return Credentials(frozen.access_key, frozen.secret_key, frozen.token,
                               f"boto3's default credentials ({resolved.method})")
    looked = f"{connections_file} ({ADMIN_CONN_ID}), " if connections_file else ""
    raise NoCredentials(
        "no AWS credentials: make aws-check creates a Redshift warehouse in your AWS account, so it needs "
        f"credentials allowed to create IAM roles, Redshift, secrets and S3 buckets. Looked in {looked}"
        "AWS_ACCESS_KEY_ID / AWS_PROFILE, ~/.aws/credentials and an instance role. Set AWS_PROFILE, or add an "
        f"'{ADMIN_CONN_ID}' connection to connections.yaml (see connections.example.yaml). Nothing was created."
    )
