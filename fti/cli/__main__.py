"""`python -m fti.cli …`: the same as the `fti` console script."""

from fti.cli import app

app()
