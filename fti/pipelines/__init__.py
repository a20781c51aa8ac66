"""One function per pipeline task. Airflow tasks, dvc.yaml stages and the CLI all call these.

Each takes plain arguments (names of the project's groups and models, dates, versions), reads
the settings when it runs, and returns a small pointer (a path, a version number, a summary
dict), never the data itself. Each is a thin step over fti.features, fti.training,
fti.inference and the stores, in the module of its pipeline:

- ``features``: validate raw files; plan, build and publish feature and label groups.
- ``training``: build a training set, train and register a version, promote it.
- ``inference``: score a date (and shadow-score it), readiness checks, rollback.
- ``retention``: what `fti gc` and the retention DAG remove (``fti.retention``).
- ``runs``: what every run starts from (settings, project, dates) and the days no run filled.

Every step logs under ``fti.pipelines``, the logger of the single module these came from, so
a log filter or search on it (Airflow shows it as each line's source) keeps working.
"""
