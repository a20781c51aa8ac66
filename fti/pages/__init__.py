"""The fti pages: feature versions, models, prediction runs, drift, realized performance and
health, as server-rendered pages (Jinja2 templates, one small script, inline SVG charts).

``app.create_app(auth)`` builds the FastAPI app; the Airflow plugin (``plugins/fti_plugin.py``)
mounts it inside Airflow's UI with Airflow's login behind ``auth``. Nothing here imports
Airflow. Layout: ``routes`` and ``forms`` (handlers), ``auth`` (login, permission, CSRF),
``views`` (view models: plain data read from fti's tables), ``charts`` and ``svg`` (themed SVG
charts), ``format`` (values for people), ``render`` (the Jinja environment), ``templates/``
and ``static/``.

Why server-rendered templates, not an Airflow 3 ``react_apps`` plugin: the pages are read-mostly
reports over fti's tables, each a single request; Jinja2 ships with Airflow, so nothing is built,
pinned or bundled (no Node toolchain in ``make test``, no CDN at run time), and one small script
(``static/fti.js``) gives the tables sorting, filtering and paging. The look is Airflow 3's own
tokens (its Chakra theme's palette, fonts and task-state colours) in ``static/fti.css``, light or
dark as Airflow's UI is (its ``theme`` setting, read from the parent frame) or as the system
prefers.
"""
