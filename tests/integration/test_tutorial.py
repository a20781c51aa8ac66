"""The "Bring your own data" tutorial of the docs (docs/bring-your-own-data.md), run literally:
its commands, in order, from an empty folder, as a new user would type them (a bash shell with
fti's virtual environment on PATH). The tutorial cannot rot without this test failing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.user_shell import user_env

TUTORIAL = REPO / "docs" / "bring-your-own-data.md"
MARKER = "<!-- tutorial: tests/integration/test_tutorial.py runs the commands of the next block"


def tutorial_commands() -> list[str]:
    """The commands of the tutorial page's block after the marker (comments stripped)."""
    page = TUTORIAL.read_text()
    assert MARKER in page, f"{TUTORIAL.relative_to(REPO)} lost its tutorial marker"
    block = re.search(r"```bash\n(.*?)```", page[page.index(MARKER) :], re.DOTALL)
    assert block is not None
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_tutorial_runs_from_an_empty_folder_to_predictions(tmp_path: Path) -> None:
    commands = tutorial_commands()
    assert commands[0].startswith("fti new") and any(c.startswith("fti run") for c in commands)
    # A user's shell: fti's virtual environment on PATH, none of the test session's settings.
    env = user_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    transcript = []
    script = "set -e\n" + "\n".join(f"echo '$ {c.replace(chr(39), '')}'\n{c}" for c in commands)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    transcript = done.stdout + done.stderr
    assert done.returncode == 0, transcript[-5000:]
    assert "Traceback" not in transcript, transcript[-5000:]
    # What the tutorial promises: a summary, predictions in SQL, the promotion recorded.
    assert "fti run finished in" in transcript
    assert re.search(r"model sales_forecast \(regression\): \d+ version\(s\); champion", transcript)
    assert "predictions for 2025-04-30: 5 rows" in transcript
    assert "tutorial: promote by hand" in transcript, transcript[-3000:]
    project = tmp_path / "corner_shop"
    assert (project / ".fti" / "fti.db").exists()
