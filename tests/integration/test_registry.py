"""The model registry under load and attack: concurrent registrations and alias flips, safe artifacts."""

from __future__ import annotations

import multiprocessing
import pickle
import random
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select, update

from fti.db.engine import session_scope
from fti.db.tables import AliasEvent, ModelVersion
from fti.errors import ArtifactIntegrityError
from fti.registry import aliases
from fti.registry.versions import compare, get_version, register_version
from fti.training.artifacts import load_artifact, save_artifact, sha256_of
from tests.integration.test_database import lineage

MODELS = ("churn", "spend")


def register_one(url: str) -> int:
    with session_scope(url, write=True) as session:
        return register_version(session, "m", **lineage()).version


def register_in_a_process(url: str, count: int) -> list[int]:
    from fti.db.engine import get_engine

    get_engine.cache_clear()  # a fresh engine in this process
    return [register_one(url) for _ in range(count)]


def test_100_concurrent_registrations_from_threads_and_processes_give_1_to_100(db_url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=spawn) as processes, ThreadPoolExecutor(16) as threads:
        from_processes = [processes.submit(register_in_a_process, db_url, 10) for _ in range(4)]
        from_threads = [threads.submit(register_one, db_url) for _ in range(60)]
        numbers = [f.result() for f in from_threads] + [
            n for f in from_processes for n in f.result()
        ]
    assert sorted(numbers) == list(range(1, 101))
    with session_scope(db_url) as session:
        stored = list(session.scalars(select(ModelVersion.version).where(ModelVersion.name == "m")))
    assert sorted(stored) == list(range(1, 101))


def test_1000_alias_flips_with_concurrent_readers(db_url: str) -> None:
    with session_scope(db_url, write=True) as session:
        for _ in range(5):
            register_version(session, "m", **lineage())
        aliases.set_alias(session, "m", "champion", 1, "setup", "start")
    stop = threading.Event()
    resolved: list[int] = []
    errors: list[BaseException] = []

    def flip(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(500):
                with session_scope(db_url, write=True) as session:
                    aliases.set_alias(
                        session, "m", "champion", rng.randint(1, 5), f"w{seed}", "flip"
                    )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                with session_scope(db_url) as session:
                    version = aliases.resolve(session, "m", "champion")
                    resolved.append(get_version(session, "m", version).version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    writers = [threading.Thread(target=flip, args=(seed,)) for seed in (1, 2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()

    assert errors == []
    assert resolved and set(resolved) <= {1, 2, 3, 4, 5}
    with session_scope(db_url) as session:
        events = list(session.scalars(select(AliasEvent).order_by(AliasEvent.id)))
        assert len(events) == 1001
        for before, after in zip(events, events[1:], strict=False):
            assert after.from_version == before.to_version  # no lost or interleaved change
        assert aliases.current(session, "m", "champion") == events[-1].to_version


def test_history_at_answers_who_held_the_alias_then(db_url: str) -> None:
    timeline = [
        (datetime(2026, 4, 1, tzinfo=UTC), 1),
        (datetime(2026, 4, 20, tzinfo=UTC), 2),
        (datetime(2026, 5, 3, tzinfo=UTC), 3),
    ]
    with session_scope(db_url, write=True) as session:
        for _ in range(3):
            register_version(session, "m", **lineage())
        for when, version in timeline:
            event = aliases.set_alias(session, "m", "champion", version, "ops", "release")
            session.execute(
                update(AliasEvent).where(AliasEvent.id == event.id).values(created_at=when)
            )
    with session_scope(db_url) as session:
        assert aliases.holder_at(session, "m", "champion", datetime(2026, 3, 1, tzinfo=UTC)) is None
        assert aliases.holder_at(session, "m", "champion", datetime(2026, 5, 1, tzinfo=UTC)) == 2
        assert aliases.holder_at(session, "m", "champion", datetime(2026, 4, 20, tzinfo=UTC)) == 2
        assert aliases.holder_at(session, "m", "champion", datetime(2026, 6, 1, tzinfo=UTC)) == 3


def test_two_models_number_their_versions_independently(db_url: str) -> None:
    def register(name: str) -> int:
        with session_scope(db_url, write=True) as session:
            return register_version(session, name, **lineage()).version

    with ThreadPoolExecutor(8) as threads:
        futures = {name: [threads.submit(register, name) for _ in range(20)] for name in MODELS}
        numbers = {name: sorted(f.result() for f in found) for name, found in futures.items()}
    assert numbers == {name: list(range(1, 21)) for name in MODELS}


def test_compare_shows_metrics_features_across_groups_and_windows(db_url: str) -> None:
    def features(*named: tuple[str, str, str]) -> list[dict[str, object]]:
        return [{"group": g, "name": f, "dtype": d, "ttl_days": 0} for g, f, d in named]

    with session_scope(db_url, write=True) as session:
        a = register_version(
            session,
            "m",
            **lineage(
                metrics={"roc_auc": 0.70},
                feature_versions={"g": 1, "h": 1},
                label_group="y",
                label_version=1,
                features=features(("g", "f1", "int64"), ("g", "f2", "int64"), ("h", "f3", "int64")),
            ),
        )
        b = register_version(
            session,
            "m",
            **lineage(
                metrics={"roc_auc": 0.75},
                params={"C": 2.0},
                feature_versions={"g": 2, "h": 1},
                label_group="y",
                label_version=2,
                features=features(
                    ("g", "f2", "int64"), ("h", "f3", "double"), ("h", "f4", "int64")
                ),
            ),
        )
        result = compare(a, b)
    assert result["metric"] == "roc_auc"
    assert result["metrics"]["roc_auc"]["delta"] == pytest.approx(0.05)
    assert result["features"] == {
        "common": ["g.f2", "h.f3"],
        "only_v1": ["g.f1"],
        "only_v2": ["h.f4"],
        "dtype_changed": ["h.f3"],
    }
    assert result["feature_versions"] == {"v1": {"g": 1, "h": 1}, "v2": {"g": 2, "h": 1}}
    assert result["label_versions"] == {"v1": "y v1", "v2": "y v2"}
    assert result["params_changed"] == {"C": {"v1": 1.0, "v2": 2.0}}


# ---- artifacts --------------------------------------------------------------------------------
@pytest.fixture
def stored_model(tmp_path: Path) -> tuple[Path, str]:
    rng = np.random.default_rng(0)
    model = LogisticRegression().fit(rng.normal(size=(50, 3)), rng.integers(0, 2, 50))
    return save_artifact(model, tmp_path / "artifacts")


def test_artifacts_are_content_addressed_and_load_back(stored_model: tuple[Path, str]) -> None:
    path, digest = stored_model
    assert path.name == f"{digest}.skops" and sha256_of(path.read_bytes()) == digest
    assert load_artifact(path, digest).predict_proba(np.zeros((1, 3))).shape == (1, 2)


def test_flipped_truncated_and_swapped_artifacts_are_refused(
    stored_model: tuple[Path, str], tmp_path: Path
) -> None:
    path, digest = stored_model
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    cases = {"flipped": bytes(flipped), "truncated": data[: len(data) // 2]}
    other, _ = save_artifact(LogisticRegression().fit(np.eye(2), [0, 1]), tmp_path / "other")
    cases["swapped"] = other.read_bytes()
    for name, content in cases.items():
        path.write_bytes(content)
        with pytest.raises(ArtifactIntegrityError, match="sha256"):
            load_artifact(path, digest)
        assert name  # each case refused before anything was deserialised


class Payload:
    """A pickle that runs a command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_payload_never_executes_even_with_a_matching_checksum(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(Payload(marker))
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    with pytest.raises(ArtifactIntegrityError, match="never loads pickles"):
        load_artifact(path, sha256_of(data))
    assert not marker.exists()


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    import skops.io as sio

    from tests.integration.untrusted import Gadget

    data = sio.dumps(Gadget())
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    with pytest.raises(
        ArtifactIntegrityError, match="does not trust: tests.integration.untrusted.Gadget"
    ):
        load_artifact(path, sha256_of(data))
