"""Model artifacts are stored compressed, and artifacts stored uncompressed still load."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from fti.training.artifacts import load_artifact, save_artifact, sha256_of


def test_artifacts_are_compressed_and_uncompressed_ones_still_load(tmp_path: Path) -> None:
    import skops.io as sio

    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(200, 4)), rng.integers(0, 3, 200)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(features, labels)
    path, digest = save_artifact(model, tmp_path / "artifacts")
    plain = bytes(sio.dumps(model))  # as fti stored artifacts before
    with zipfile.ZipFile(path) as archive:
        assert {m.compress_type for m in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    assert path.stat().st_size < len(plain) / 2
    old = tmp_path / "old.skops"
    old.write_bytes(plain)
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        assert {m.compress_type for m in archive.infolist()} == {zipfile.ZIP_STORED}
    expected = model.predict_proba(features[:5])
    for stored, sha in ((path, digest), (old, sha256_of(plain))):
        assert np.array_equal(load_artifact(stored, sha).predict_proba(features[:5]), expected)
