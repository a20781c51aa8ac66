"""The README's links into the repository resolve.

`make test` builds the docs site with `mkdocs build --strict`, which checks every link between
the pages of docs/. The README is outside the site, and it is the page people land on: its
relative links (to docs/*.md, benchmarks/RESULTS.md, ...) are checked here.
"""

from __future__ import annotations

import re

from tests.conftest import REPO

LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_relative_link_of_the_readme_names_a_file_of_the_repository() -> None:
    targets = LINK.findall((REPO / "README.md").read_text())
    relative = [t for t in targets if not t.startswith(("http://", "https://", "#", "mailto:"))]
    assert any(t.startswith("docs/") for t in relative), "the README links into docs/"
    missing = [t for t in relative if not (REPO / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
