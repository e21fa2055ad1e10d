# voicemood: `make run` runs the bots (or, with no bot token, the web page), `make test` the tests.
# Both install what they need first: Debian packages (ffmpeg, espeak-ng, sox, a CJK font, redis,
# chromium), a virtualenv with the pinned Python dependencies, and the offline Whisper weights.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES = ffmpeg espeak-ng sox fonts-noto-cjk
# redis-server: the broker for scale-out mode (VOICEMOOD_BROKER_URL) and its tests.
APT_PACKAGES += redis-server
# chromium + chromium-driver: the headless browser the web page's tests drive.
APT_PACKAGES += chromium chromium-driver

.PHONY: install system-deps run test lint bench models-status clean

install: system-deps $(VENV)/.installed

system-deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v espeak-ng >/dev/null \
	    || ! command -v sox >/dev/null || ! command -v redis-server >/dev/null \
	    || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
	  echo "installing $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    $(APT_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "voicemood needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: a bare dependency would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/voicemood models prepare
	touch $@

run: install
	@test -f .env || echo "note: no .env file: only the web page runs; copy .env.example to .env and set a bot token to add a bot"
	$(BIN)/voicemood serve

test: install
	$(BIN)/python -m pytest -q -ra

# ruff, then the import layers (pyproject.toml [tool.importlinter]: no cycles, no import upwards).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/run.py

models-status: install
	$(BIN)/voicemood models status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
