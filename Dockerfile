# syntax=docker/dockerfile:1
#
# The Sparkify pipelines on Apache Airflow's official image, the way the Airflow docs extend it:
# the project's locked dependencies installed with pip as the image's `airflow` user, and the
# DAGs, plugins and SQL copied in. docker-compose.yaml builds and runs it; docs/docker.md says how.
#
# The tag pins what requirements.lock pins (tests/containers/test_dockerfile.py checks both):
# apache-airflow 3.3.2 on Python 3.11. The "slim" variant carries Airflow core only, so what runs
# is what the lock file says rather than the reference image's own provider set.
#
# No secret, connection or password is baked in: they come at run time from the environment
# (docker-compose.yaml, .env). .dockerignore keeps .env, .venv and local state out of the context.
FROM apache/airflow:slim-3.3.2-python3.11

# The lock file to install: requirements.lock (the pipeline's runtime pins), or for the Celery
# profile requirements-celery.lock, which adds the Celery provider (docs/docker.md, "Celery workers").
ARG REQUIREMENTS=requirements.lock

ENV PYTHONPATH=/opt/airflow/plugins \
    SPARKIFY_INCLUDE_DIR=/opt/airflow/include \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# The image's `airflow` user (uid 50000, group root), by number so that a runtime that checks
# runAsNonRoot can tell; pip installs for this user, as the Airflow docs do it.
USER 50000

# "apache-airflow==${AIRFLOW_VERSION}" (the base image's version) keeps pip from moving Airflow:
# if the lock ever pinned another version, the build stops here instead. `pip check` stops it
# too when the lock and what the base image already has do not fit together.
COPY --chown=airflow:root ${REQUIREMENTS} /opt/airflow/requirements.lock
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.lock \
    && pip check

COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
