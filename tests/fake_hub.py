"""A fake Hugging Face model hub on 127.0.0.1, enough for huggingface_hub's snapshot_download.

It answers the three requests huggingface_hub 2.x makes (repo info for the commit, the
recursive file tree, and ``resolve`` for each file, HEAD then GET with optional Range) from
local folders, one per repository id. A test can make one file come back corrupt (same
size, other bytes) or cut off mid-transfer, to check what a failed download leaves behind.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: The one commit every fake repository is at.
COMMIT = "0123456789abcdef0123456789abcdef01234567"
#: Files served as LFS files (listed with a sha256), as the real hub does for weights.
LFS_SUFFIXES = (".pt", ".bin", ".safetensors", ".model")

_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class FakeHub:
    """The served repositories and the faults to inject; ``url`` once started."""

    repos: dict[str, Path]
    corrupt: set[tuple[str, str]] = field(default_factory=set)  # (repo, file): bytes flipped
    cut: set[tuple[str, str]] = field(default_factory=set)  # (repo, file): half, then close
    url: str = ""
    requests: list[str] = field(default_factory=list)

    def files(self, repo: str) -> list[Path]:
        root = self.repos[repo]
        return sorted(p for p in root.rglob("*") if p.is_file())

    def entry(self, repo: str, path: Path) -> dict[str, object]:
        data = path.read_bytes()
        rel = path.relative_to(self.repos[repo]).as_posix()
        blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        item: dict[str, object] = {"type": "file", "oid": blob, "size": len(data), "path": rel}
        if rel.endswith(LFS_SUFFIXES):
            item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                           "pointerSize": 134}
        return item


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            pass  # keep pytest output clean; requests are recorded in hub.requests

        def _json(self, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _missing(self) -> None:
            body = b'{"error": "Repository not found"}'
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self._serve(head=True)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append(f"{self.command} {path}")
            if m := _INFO.match(path):
                if m["repo"] not in hub.repos:
                    return self._missing()
                siblings = [{"rfilename": p.relative_to(hub.repos[m["repo"]]).as_posix()}
                            for p in hub.files(m["repo"])]
                return self._json({"id": m["repo"], "modelId": m["repo"], "sha": COMMIT,
                                   "private": False, "siblings": siblings})
            if m := _TREE.match(path):
                if m["repo"] not in hub.repos:
                    return self._missing()
                return self._json([hub.entry(m["repo"], p) for p in hub.files(m["repo"])])
            if (m := _RESOLVE.match(path)) and m["repo"] in hub.repos:
                file = hub.repos[m["repo"]] / m["path"]
                if file.is_file():
                    return self._file(m["repo"], m["path"], file, head=head)
            return self._missing()

        def _file(self, repo: str, rel: str, file: Path, *, head: bool) -> None:
            data = file.read_bytes()
            entry = hub.entry(repo, file)
            lfs = entry.get("lfs")
            etag = lfs["oid"] if isinstance(lfs, dict) else entry["oid"]
            if (repo, rel) in hub.corrupt:
                data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
            start = 0
            ranged = re.match(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if ranged:
                start = int(ranged.group(1))
            self.send_response(206 if ranged else 200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if head:
                return
            body = data[start:]
            if (repo, rel) in hub.cut:
                self.wfile.write(body[: max(1, len(body) // 2)])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(hub: FakeHub) -> Iterator[FakeHub]:
    """Run ``hub`` on 127.0.0.1 (a free port) for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
