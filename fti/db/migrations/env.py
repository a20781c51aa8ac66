"""Alembic environment: the URL comes from the caller (fti.db.migrate), never from a file."""

from alembic import context

from fti.db.engine import get_engine
from fti.db.migrate import include_name
from fti.db.tables import Base

config = context.config
url = config.attributes["url"]

with get_engine(url).begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
        include_name=include_name,
    )
    context.run_migrations()
