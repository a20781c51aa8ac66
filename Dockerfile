# fti's production image: Airflow with fti installed, fti's DAGs, its UI plugin and a project
# (its package and params.yaml). Built by `docker compose build` (see docker-compose.yaml). The
# Airflow version here, the image tag in docker-compose.yaml and the apache-airflow pin in
# constraints.txt must agree (tests/unit/test_compose.py checks it).

# The project the image carries: a folder holding the project's package and its params.yaml (the
# layout `fti new NAME` writes). This stage is the default, the churn demo; a build context named
# `project` replaces it: docker-compose.yaml passes FTI_PROJECT_DIR as that context and
# FTI_PROJECT_PACKAGE and FTI_PROJECT as build arguments (from .env). Without compose, add
# `--build-context project=../my_sales --build-arg FTI_PROJECT_PACKAGE=my_sales`
# `--build-arg FTI_PROJECT=my_sales.project:project` to `docker build`.
FROM scratch AS project
COPY churn_demo /churn_demo
COPY params.yaml /params.yaml

FROM apache/airflow:3.3.2-python3.11

# FTI_HOME and Airflow's logs live on named volumes mounted on these directories; an empty named
# volume takes its mount point's owner, so the airflow user (uid 50000, gid 0) can write them.
USER root
RUN mkdir -p /var/lib/fti /opt/airflow/logs /opt/fti/src /opt/fti/project \
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

# What Airflow loads (the default DAGS_FOLDER and PLUGINS_FOLDER of the image).
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins

# The project, last (a new project rebuilds only these layers), into /opt/fti/project: its
# params.yaml and package, where docker-compose.yaml also mounts them from FTI_PROJECT_DIR (the
# same folder), so a container runs the folder's files and the image alone runs its copy. The
# packages the project needs beyond fti's come from its requirements.txt, when it has one
# (the pattern [t] lets it be missing), pinned where constraints.txt pins them.
# The build fails at the end when the definition does not load (FTI_PROJECT, FTI_PROJECT_PACKAGE).
ARG FTI_PROJECT_PACKAGE=churn_demo
ARG FTI_PROJECT=churn_demo.project:project
COPY --from=project --chown=airflow:0 params.yaml requirements.tx[t] /opt/fti/project/
RUN if [ -f /opt/fti/project/requirements.txt ]; then \
        pip install --no-cache-dir -c /opt/fti/src/constraints.txt -r /opt/fti/project/requirements.txt \
        && pip check; \
    fi
COPY --from=project --chown=airflow:0 ${FTI_PROJECT_PACKAGE} /opt/fti/project/${FTI_PROJECT_PACKAGE}
ENV PYTHONPATH=/opt/fti/project \
    FTI_PROJECT=${FTI_PROJECT} \
    FTI_PARAMS_FILE=/opt/fti/project/params.yaml
RUN python -c "import os; from fti.definitions import load_project; load_project(os.environ['FTI_PROJECT'])"
WORKDIR /opt/airflow
