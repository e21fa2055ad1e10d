#!/usr/bin/env python3
"""The image's HEALTHCHECK: GET /healthz of this container's VOICEMOOD_METRICS_PORT.

Why a script: one check for every role (serve and worker answer /healthz on the same
setting), run from inside the container so it works whether VOICEMOOD_METRICS_HOST binds
127.0.0.1 or 0.0.0.0, with a hard timeout so a hung process reads as unhealthy, and a
clear line in `docker inspect` instead of a traceback. Standard library only.
"""

import os
import sys
import urllib.error
import urllib.request

port = os.environ.get("VOICEMOOD_METRICS_PORT", "0").strip() or "0"
if port == "0":
    # Metrics turned off on purpose: nothing to ask, so do not report the container sick.
    print("VOICEMOOD_METRICS_PORT=0: health not checked")
    sys.exit(0)
host = os.environ.get("VOICEMOOD_METRICS_HOST", "").strip()
if host in ("", "0.0.0.0", "::", "[::]"):  # a wildcard bind answers on loopback too
    host = "127.0.0.1"
url = f"http://{host}:{port}/healthz"
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        print(response.read(200).decode(errors="replace").strip())
        sys.exit(0)
except urllib.error.HTTPError as exc:  # 503 and the reason: models loading, broker down
    print(f"{url}: {exc.code} {exc.read(200).decode(errors='replace').strip()}")
except OSError as exc:
    print(f"{url}: {exc}")
sys.exit(1)
