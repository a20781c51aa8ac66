"""A publish killed at the narrow points that used to leave the store stuck: the next run
publishes, and readers see only whole versions meanwhile.

Each kill is real (``crashing_publisher`` stops at that exact point: a fault point in the code,
a git hook, or DVC half way through a write), or the file is made exactly as git or DVC leaves
it. The broader kill test, one kill per publish step, is in test_feature_store.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from filelock import FileLock
from sqlalchemy import text

from fti.db.engine import session_scope
from fti.db.migrate import upgrade
from fti.online import read_online
from fti.store.catalog import list_versions
from fti.store.registry_repo import init_store
from fti.store.versions import DVC_RWLOCK, IN_PROGRESS, FeatureStore
from tests.integration import crashing_publisher
from tests.integration.crashing_publisher import FIRST, GROUP, NEW_DAYS, OTHER, partition

ROOT = Path(__file__).resolve().parents[2]
MARKER_TEMP = f"{IN_PROGRESS}.tmp"


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    init_store(tmp_path / "store", str(tmp_path / "remote"))
    return FeatureStore(tmp_path / "store")


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'fti.db'}"
    upgrade(url)
    return url


def publish_first(store: FeatureStore, catalog: str) -> pa.Table:
    assert crashing_publisher.publish(store, catalog, {FIRST: partition(FIRST, 1)}, "v1") == 1
    return store.read(GROUP, 1)


def git_lines(store: FeatureStore, *args: str) -> list[str]:
    done = subprocess.run(
        ["git", *args], cwd=store.path, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def catalog_rows(db_url: str, group: str = GROUP) -> list[tuple[int, int, int]]:
    """The catalog rows of the group readers see (``fti features versions``, the pages)."""
    with session_scope(db_url) as session:
        return [(r.version, r.row_count, r.partitions) for r in list_versions(session, group)]


def rows_in_sql(db_url: str, group: str = GROUP) -> list[int]:
    """The versions of every catalog row of the group in the table, whatever state it is in."""
    with session_scope(db_url) as session:
        query = text("SELECT version FROM feature_versions WHERE group_name = :g ORDER BY 1")
        return list(session.scalars(query, {"g": group}))


def online(db_url: str, group: str = GROUP) -> tuple[int | None, set[int]]:
    """The version of ``group`` online and the values of ``x`` its rows hold, as `fti features
    get` and `fti serve` read them."""
    held = read_online(db_url, group, [str(e) for e in range(2_000)], ["x"])
    return held.version, set(held.rows["x"].tolist()) if len(held.rows) else set()


def assert_only_version_1(store_path: Path, v1: pa.Table) -> None:
    """A reader (a fresh FeatureStore, as another process has) sees version 1, whole."""
    reader = FeatureStore(store_path)
    assert reader.versions(GROUP) == [1]
    assert reader.read(GROUP, 1).equals(v1)


def assert_next_publish_makes_v2(store: FeatureStore, catalog: str, v1: pa.Table) -> None:
    """The next publish recovers by itself and makes version 2 of the new days, and nothing
    of a killed publish is left: no lock, no marker, no untagged commit, no catalog row."""
    assert_only_version_1(store.path, v1)
    again = {day: partition(day, 3) for day in NEW_DAYS}
    assert crashing_publisher.publish(store, catalog, again, "v2") == 2
    reader = FeatureStore(store.path)
    assert reader.versions(GROUP) == [1, 2]
    assert reader.read(GROUP, 1).equals(v1)
    v2 = reader.read(GROUP, 2).select(["feature_date", "x"]).to_pydict()
    assert sorted(set(zip(*v2.values(), strict=True))) == [
        (FIRST, 1),
        *((day, 3) for day in NEW_DAYS),
    ]
    assert catalog_rows(catalog) == [(1, 2_000, 1), (2, 6_000, 3)]
    assert git_lines(store, "status", "--porcelain") == []
    assert not [s for s in git_lines(store, "log", "--format=%s") if s.endswith(": killed")]
    assert sorted((store.path / ".git").rglob("*.lock")) == []
    assert not (store.path / IN_PROGRESS).exists()
    assert not (store.path / MARKER_TEMP).exists()


def head_lock_left(store: Path) -> None:
    assert (store / ".git" / "HEAD.lock").exists()
    assert (store / ".git" / "refs" / "heads" / "main.lock").exists()


def rwlock_cut_short(store: Path) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads((store / DVC_RWLOCK).read_text())


def object_lock_left(store: Path) -> None:
    assert list((store / ".git" / "objects").glob("??/*.lock"))


def marker_temp_left_empty(store: Path) -> None:
    assert (store / MARKER_TEMP).read_text() == ""
    assert not (store / IN_PROGRESS).exists()


@pytest.mark.parametrize(
    ("step", "left"),
    [
        ("head_lock", head_lock_left),  # git killed inside `git commit`, holding HEAD.lock
        ("rwlock", rwlock_cut_short),  # DVC killed half way through rewriting its rwlock
        ("object_lock", object_lock_left),  # dulwich killed holding a loose object's lock
        ("publish.marker", marker_temp_left_empty),  # killed between creating and writing it
    ],
)
def test_a_kill_that_leaves_a_lock_or_a_marker_half_made_does_not_stop_the_next_publish(
    store: FeatureStore, catalog: str, step: str, left: Callable[[Path], None]
) -> None:
    v1 = publish_first(store, catalog)
    crashing_publisher.run_killed(store, catalog, step)
    left(store.path)  # the kill landed at the exact point
    assert_next_publish_makes_v2(store, catalog, v1)


def live_rwlock_entry(store: Path) -> str:
    """An entry whose pid is alive (a killed publisher's pid, reused): DVC would wait on it."""
    info = {"pid": os.getpid(), "cmd": "dvc add"}
    return json.dumps({"write": {str(store / "data" / GROUP): info}})


LEFTOVERS: dict[str, tuple[str, Callable[[Path], str]]] = {
    "HEAD.lock": (".git/HEAD.lock", lambda store: ""),
    "index.lock": (".git/index.lock", lambda store: ""),
    "ORIG_HEAD.lock": (".git/ORIG_HEAD.lock", lambda store: ""),
    "packed-refs.lock": (".git/packed-refs.lock", lambda store: ""),
    "config.lock": (".git/config.lock", lambda store: "[core]\n"),
    "branch ref lock": (".git/refs/heads/main.lock", lambda store: ""),
    "tag ref lock": (f".git/refs/tags/{GROUP}/v2.lock", lambda store: ""),
    "rwlock cut short": (DVC_RWLOCK, lambda store: '{"write": {"' + str(store / "data")),
    "rwlock not a lock": (DVC_RWLOCK, lambda store: '{"write": []}'),
    "rwlock held by a reused pid": (DVC_RWLOCK, live_rwlock_entry),
    "dvc repo lock": (".dvc/tmp/lock", lambda store: " 999999999\n"),
    "empty marker": (IN_PROGRESS, lambda store: ""),
    "marker cut short": (IN_PROGRESS, lambda store: f"{GROUP}/v"),
    "marker temp": (MARKER_TEMP, lambda store: f"{GROUP}/v2"),
}


@pytest.mark.parametrize("leftover", LEFTOVERS)
def test_a_file_git_or_dvc_leaves_when_killed_does_not_stop_the_next_publish(
    store: FeatureStore, catalog: str, leftover: str
) -> None:
    """Each file as git or DVC leaves it when killed holding it (or fti, for its marker)."""
    v1 = publish_first(store, catalog)
    where, content = LEFTOVERS[leftover]
    (store.path / where).parent.mkdir(parents=True, exist_ok=True)
    (store.path / where).write_text(content(store.path))
    assert_next_publish_makes_v2(store, catalog, v1)


def test_an_unreadable_marker_recovers_every_group(store: FeatureStore, catalog: str) -> None:
    """With no group to go by, recovery drops the untagged commit and restores every group,
    whichever group the next publish is of."""
    v1 = publish_first(store, catalog)
    labels = {FIRST: partition(FIRST, 0, 10)}
    assert store.publish("churned", labels, "labels v1").version == 1
    crashing_publisher.run_killed(
        store, catalog, "tag"
    )  # activity's two new days committed, not tagged
    assert len(list(store.group_dir(GROUP).iterdir())) == 3
    (store.path / IN_PROGRESS).write_text("")  # as a publish killed while writing it left it

    assert store.publish("churned", labels, "labels again").new is False
    assert git_lines(store, "log", "-1", "--format=%s") == ["churned/v1: labels v1"]
    assert git_lines(store, "status", "--porcelain") == []
    assert sorted(p.name for p in store.group_dir(GROUP).iterdir()) == [
        f"feature_date={FIRST.isoformat()}"  # the work tree of activity is v1's again
    ]
    assert_next_publish_makes_v2(store, catalog, v1)


RECOVERY_KILLS = ["recover.locks", "recover.dropped", "recover.checkout", "head_lock"]


@pytest.mark.parametrize("point", RECOVERY_KILLS)
def test_a_kill_during_the_next_runs_recovery_still_lets_the_run_after_it_publish(
    store: FeatureStore, catalog: str, point: str
) -> None:
    v1 = publish_first(store, catalog)
    crashing_publisher.run_killed(store, catalog, "tag")  # a commit, a catalog row, no tag
    crashing_publisher.run_killed(
        store, catalog, point
    )  # the next run dies while recovering from that
    if point == "head_lock":  # inside recovery's `git reset`, holding HEAD.lock
        head_lock_left(store.path)
    assert (store.path / IN_PROGRESS).exists()
    assert_only_version_1(store.path, v1)
    assert_next_publish_makes_v2(store, catalog, v1)


def test_a_catalog_row_whose_tag_was_never_made_goes_at_the_next_publish_that_changes_nothing(
    store: FeatureStore, db_url: str
) -> None:
    v1 = publish_first(store, db_url)
    crashing_publisher.run_killed(
        store, db_url, "tag"
    )  # the row of v2 is written, its tag never made
    assert rows_in_sql(db_url) == [1, 2]
    assert catalog_rows(db_url) == [(1, 2_000, 1)]  # readers never see it

    rerun = {FIRST: partition(FIRST, 1)}  # the data of v1: no new version
    assert crashing_publisher.publish(store, db_url, rerun, "a rerun") == 1
    assert rows_in_sql(db_url) == [1]
    assert_next_publish_makes_v2(store, db_url, v1)


def test_a_version_killed_before_its_tag_is_never_online_and_another_groups_publish_drops_it(
    store: FeatureStore, db_url: str
) -> None:
    """Issue 25's orphan: the catalog row (and, before, the online rows) of a version whose
    tag was never made outlived the publish of another group."""
    v1 = publish_first(store, db_url)
    crashing_publisher.run_killed(store, db_url, "tag")
    assert rows_in_sql(db_url) == [1, 2]
    assert online(db_url) == (1, {1})  # the previous version online, whole

    assert crashing_publisher.publish(store, db_url, {FIRST: partition(FIRST, 5)}, "v1", OTHER) == 1
    assert rows_in_sql(db_url) == [1]  # gone, though this publish was of another group
    assert catalog_rows(db_url, OTHER) == [(1, 2_000, 1)]
    assert online(db_url) == (1, {1}) and online(db_url, OTHER) == (1, {5})
    assert_next_publish_makes_v2(store, db_url, v1)
    assert online(db_url) == (2, {3})


@pytest.mark.parametrize("group", [GROUP, OTHER])  # OTHER: its first version, nothing online
def test_a_version_killed_after_its_tag_is_completed_by_the_next_publish_of_any_group(
    store: FeatureStore, db_url: str, group: str
) -> None:
    """Killed between its tag and marking its row: readers see the previous version whole
    (catalog and online) until the next publish, of any group, completes it."""
    publish_first(store, db_url)
    crashing_publisher.run_killed(store, db_url, "tagged", group)
    first = group == OTHER
    assert store.versions(group) == ([1] if first else [1, 2])
    assert catalog_rows(db_url, group) == ([] if first else [(1, 2_000, 1)])
    assert online(db_url, group) == ((None, set()) if first else (1, {1}))

    publisher = OTHER if group == GROUP else GROUP  # the other group's publish completes it
    later = {NEW_DAYS[-1] + timedelta(days=1): partition(NEW_DAYS[-1] + timedelta(days=1), 7)}
    crashing_publisher.publish(store, db_url, later, "next", publisher)
    expected = [(1, 4_000, 2)] if first else [(1, 2_000, 1), (2, 6_000, 3)]
    assert catalog_rows(db_url, group) == expected
    assert online(db_url, group) == (expected[-1][0], {2})  # the newest rows are the new days'


def opened(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux: its /proc fd links)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_recovery_waits_for_the_store_lock_and_never_touches_a_live_publishers_locks(
    store: FeatureStore, catalog: str
) -> None:
    v1 = publish_first(store, catalog)
    lock_file = store.path / ".publish.lock"
    publisher_code = (
        "import sys; from pathlib import Path; "
        "from tests.integration.crashing_publisher import publish, partition, NEW_DAYS; "
        "from fti.store.versions import FeatureStore; "
        "print('ready', flush=True); "
        "print(publish(FeatureStore(Path(sys.argv[1])), sys.argv[2], "
        "{d: partition(d, 3) for d in NEW_DAYS}, 'v2'))"
    )
    with FileLock(str(lock_file)):  # a live publisher, inside `git commit`
        live = [store.path / ".git" / "HEAD.lock", store.path / ".git" / "index.lock"]
        for path in live:
            path.touch()
        waiting = subprocess.Popen(
            [sys.executable, "-c", publisher_code, str(store.path), catalog],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Its imports done, it goes for the lock (a busy machine may take long to get here:
        # readline waits as long as that takes; EOF means it died, and says why).
        assert waiting.stdout is not None
        assert waiting.stdout.readline().strip() == "ready", waiting.communicate()
        seen = time.monotonic()
        while time.monotonic() < seen + 2:  # filelock polls: its fd is open now and then
            if opened(waiting.pid, lock_file):
                break
            time.sleep(0.01)
        assert waiting.poll() is None  # it waits for the store lock...
        assert all(path.exists() for path in live)  # ...and leaves the live writer's locks
        assert_only_version_1(store.path, v1)
    out, err = waiting.communicate()  # the live publisher "died" holding its locks
    assert waiting.returncode == 0, err
    assert out.split() == ["2"]
    assert not any(path.exists() for path in live)


def test_the_same_publish_retried_after_dulwich_was_killed_holding_an_object_lock(
    store: FeatureStore, db_url: str
) -> None:
    """The retry writes the very object whose lock the kill left (issue 25): it publishes."""
    publish_first(store, db_url)
    crashing_publisher.run_killed(store, db_url, "object_lock")
    object_lock_left(store.path)
    same = {day: partition(day, 2) for day in NEW_DAYS}  # what the killed run published
    assert crashing_publisher.publish(store, db_url, same, "retry") == 2
    assert catalog_rows(db_url) == [(1, 2_000, 1), (2, 6_000, 3)]
    assert sorted((store.path / ".git").rglob("*.lock")) == []
