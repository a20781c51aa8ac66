# fti's production image: Airflow with fti installed, fti's DAGs, its UI plugin and params.yaml.
# Built by `docker compose build` (see docker-compose.yaml). The Airflow version here, the image tag
# in docker-compose.yaml and the apache-airflow pin in constraints.txt must agree
# (tests/unit/test_compose.py checks it).
FROM apache/airflow:3.3.2-python3.11

# FTI_HOME and Airflow's logs live on named volumes mounted on these directories; an empty named
# volume takes its mount point's owner, so the airflow user (uid 50000, gid 0) can write them.
USER root
RUN mkdir -p /var/lib/fti /opt/airflow/logs /opt/fti/src \
    && chown -R airflow:0 /var/lib/fti /opt/airflow/logs /opt/fti \
    && chmod -R g+rwX /var/lib/fti /opt/airflow/logs
USER airflow

# The library first (this layer is rebuilt only when the code or the pins change), with its
# production extra (pyproject.toml): the Celery provider and Redis client for the workers, the
# FAB provider for the auth manager and `airflow users create`, psycopg2 and asyncpg for
# Airflow's metadata database and Celery's result backend, dvc-s3 for the S3 DVC remote; the
# versions are constraints.txt's, the ones tests/live runs together (celery<5.7: the Celery
# provider imports what celery 5.7 removed, which `pip check` cannot see).
# `pip check` fails the build when fti's pins and the image's preinstalled providers disagree.
COPY --chown=airflow:0 pyproject.toml constraints.txt /opt/fti/src/
COPY --chown=airflow:0 fti /opt/fti/src/fti
COPY --chown=airflow:0 churn_demo /opt/fti/src/churn_demo
WORKDIR /opt/fti/src
RUN pip install --no-cache-dir -c constraints.txt ".[production]" \
    && pip check \
    && python -c "import airflow.providers.celery.executors.celery_executor, airflow.providers.fab.auth_manager.fab_auth_manager, asyncpg, psycopg2, redis, dvc_s3"

# What Airflow loads (the default DAGS_FOLDER and PLUGINS_FOLDER of the image) and the
# hyper-parameters (FTI_PARAMS_FILE in docker-compose.yaml points here).
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 params.yaml /opt/fti/params.yaml
WORKDIR /opt/airflow
