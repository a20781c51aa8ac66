"""Alembic environment: the URL comes from the caller (fti.db.migrate), never from a file."""

from alembic import context

from fti.db.engine import get_engine
from fti.db.migrate import comparison_filter
from fti.db.tables import Base

config = context.config
url = config.attributes["url"]

with get_engine(url).begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
        include_object=comparison_filter(connection.dialect.name),
    )
    context.run_migrations()
