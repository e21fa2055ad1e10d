"""The Makefile: `make run` installs the runtime only, `make test` adds the test tooling.

Read through `make -n -B` (print every command, run none), so nothing is installed here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_TOOLING = ("espeak-ng", "sox", "redis-server", "chromium", "chromium-driver")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args],
                          capture_output=True, text=True,
                          timeout=60)


def apt_packages(dry_run: str) -> set[str]:
    """The Debian packages the printed apt_install loops would consider."""
    return {spec.split(":")[0]
            for loop in re.findall(r"for spec in ([^;]*);", dry_run) for spec in loop.split()}


def test_make_run_installs_the_runtime_only() -> None:
    out = make("-n", "-B", "run")
    assert out.returncode == 0, out.stderr
    assert apt_packages(out.stdout) == {"ffmpeg", "fonts-noto-cjk", "fonts-noto-color-emoji"}
    assert "pip install -q -e .\n" in out.stdout
    assert "[dev]" not in out.stdout
    assert out.stdout.rstrip().endswith(".venv/bin/voicemood serve")


def test_make_test_and_lint_add_the_test_tooling() -> None:
    out = make("-n", "-B", "test")
    assert out.returncode == 0, out.stderr
    assert apt_packages(out.stdout) == {"ffmpeg", "fonts-noto-cjk", "fonts-noto-color-emoji",
                                        *TEST_TOOLING}
    assert "pip install -q -e '.[dev]'" in out.stdout
    lint = make("-n", "-B", "lint")
    assert "pip install -q -e '.[dev]'" in lint.stdout  # ruff and lint-imports are dev tools
    assert not set(TEST_TOOLING) & apt_packages(lint.stdout)


@pytest.mark.skipif(shutil.which("sudo") is not None, reason="this machine has sudo")
def test_without_root_or_sudo_the_missing_packages_are_named() -> None:
    # Packages that are not there, and "sudo" as the way to root on a machine without it:
    # the recipe stops with the list instead of failing inside apt.
    out = make("system-deps", "SUDO=sudo",
               "RUNTIME_APT=pkg-one:no-such-command pkg-two:dpkg:no-such-package")
    assert out.returncode != 0
    assert ("voicemood needs these Debian packages; install them as root: pkg-one pkg-two\n"
            in out.stderr)
