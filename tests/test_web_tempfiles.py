"""Gradio's upload folder is ours and holds nothing for long (issues #18.10 and #20.20):
each analysis deletes its clip and the content-hash folder Gradio made for it, and a sweep
(at start, then every minute) removes whatever else was left there for ten minutes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from adapters.web.app import STALE_UPLOAD_S, _read_upload, sweep_uploads
from inference.engine import InferenceEngine
from tests.conftest import REPO
from tests.web_fixtures import web_server

OLD = time.time() - STALE_UPLOAD_S - 60


def _age(path: Path, data: bytes | None = None) -> Path:
    """``path`` (written with ``data`` if given) last touched well over ten minutes ago."""
    if data is not None:
        path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def test_the_upload_folder_is_ours_unless_the_operator_names_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    code = ("import adapters.web.app as a, gradio.utils as g, os, stat; "
            "print(g.get_upload_folder()); print(oct(stat.S_IMODE(os.stat(a.own_upload_folder())"
            ".st_mode)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    expected = os.path.join(tempfile.gettempdir(), f"voicemood-gradio-{os.getuid()}")
    assert out.stdout.splitlines() == [expected, "0o700"]
    env["GRADIO_TEMP_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.stdout.splitlines()[0] == str(tmp_path)


def test_an_analysed_upload_takes_its_hash_folder_with_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    clip = tmp_path / "3f2a9c" / "note.ogg"
    clip.parent.mkdir()
    clip.write_bytes(b"OggS" + bytes(100))
    assert _read_upload(str(clip), {str(clip)}, 1000) == b"OggS" + bytes(100)
    assert list(tmp_path.iterdir()) == []


def test_the_sweep_takes_only_what_is_stale(tmp_path: Path) -> None:
    _age(tmp_path / "tmpabc", b"cut-off upload")  # an aborted upload
    stale_hash = tmp_path / "aaaa"
    stale_hash.mkdir()
    _age(stale_hash / "old.ogg", b"x")
    _age(stale_hash)
    empty = tmp_path / "bbbb"
    empty.mkdir()
    _age(empty)  # an empty content-hash folder
    fresh = tmp_path / "cccc"
    fresh.mkdir()
    (fresh / "now.ogg").write_bytes(b"being analysed")
    (tmp_path / "dddd").mkdir()  # just made, its upload about to be moved in
    assert sweep_uploads(str(tmp_path)) == 4
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "cccc", "cccc/now.ogg", "dddd"]


async def test_the_server_sweeps_at_start(engine: InferenceEngine, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    left = uploads / "eeee"
    left.mkdir()
    _age(left / "killed-run.ogg", b"x")
    _age(left)
    async with web_server(engine, tmp_path / "site"):
        deadline = time.monotonic() + 60
        while list(uploads.iterdir()):
            assert time.monotonic() < deadline, "the start-up sweep did not run"
            await asyncio.sleep(0.05)
