"""The fti pages: feature versions, models, prediction runs, drift, realized performance and
health, as server-rendered pages (Jinja2 templates, one small script, inline SVG charts).

``app.create_app(auth)`` builds the FastAPI app; the Airflow plugin (``plugins/fti_plugin.py``)
mounts it inside Airflow's UI with Airflow's login behind ``auth``. Nothing here imports
Airflow. Layout: ``routes`` and ``forms`` (handlers), ``auth`` (login, permission, CSRF),
``views`` (view models: plain data read from fti's tables), ``charts`` and ``svg`` (themed SVG
charts), ``format`` (values for people), ``render`` (the Jinja environment), ``templates/``
and ``static/``.
"""
