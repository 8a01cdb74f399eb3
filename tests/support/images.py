"""Fixtures for the image tests: small real image files and a loopback HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zstandard

from osdef.config import ImageSettings
from osdef.images import ImageStore


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_ext4(path: Path, size_mib: int = 16, content: dict[str, str] | None = None) -> Path:
    src = path.with_suffix(".d")
    src.mkdir()
    for name, text in (content or {"etc/hostname": "ext4-test\n"}).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(src), str(path), f"{size_mib}M"],
                   check=True, capture_output=True)
    return path


def make_disk(path: Path, label: str, size_mib: int = 8) -> Path:
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run(["sfdisk", "-q", str(path)], input=f"label: {label}\n,,L\n", text=True,
                   check=True, capture_output=True)
    with open(path, "r+b") as f:  # some data inside the partition
        f.seek(2 << 20)
        f.write(b"partition data" * 100)
    return path


def make_qcow2(raw: Path, path: Path) -> Path:
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)],
                   check=True, capture_output=True)
    return path


def make_tar(path: Path) -> Path:
    src = path.with_suffix(".d")
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname").write_text("tar-test\n")
    with tarfile.open(path, "w") as t:
        t.add(src, arcname=".")
    return path


def zstd_file(src: Path, dest: Path) -> Path:
    with open(src, "rb") as i, open(dest, "wb") as o:
        zstandard.ZstdCompressor(level=1).copy_stream(i, o)
    return dest


def read_all(art) -> bytes:
    with art.open() as f:
        return f.read()


@pytest.fixture
def store_factory(tmp_path: Path):
    """Make an ImageStore over a temp cache and a temp recipes dir."""
    def make(recipes: dict[str, str] | None = None, **kwargs) -> ImageStore:
        recipes_dir = tmp_path / "recipes"
        recipes_dir.mkdir(exist_ok=True)
        for name, text in (recipes or {}).items():
            (recipes_dir / f"{name}.yaml").write_text(text)
        settings = ImageSettings(cache_dir=tmp_path / "cache")
        kwargs.setdefault("progress", None)
        return ImageStore(settings, recipes_dir, **kwargs)
    return make


@dataclass
class Server:
    """A loopback HTTP server over a dict of path → bytes, counting requests."""

    files: dict[str, bytes] = field(default_factory=dict)
    truncate: dict[str, int] = field(default_factory=dict)  # path → bytes actually sent
    delay: dict[str, float] = field(default_factory=dict)  # path → seconds per MiB sent
    hits: dict[str, int] = field(default_factory=dict)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"


@pytest.fixture
def http_server() -> Iterator[Server]:
    state = Server()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            import time
            path = self.path.lstrip("/")
            with lock:
                state.hits[path] = state.hits.get(path, 0) + 1
            if path not in state.files:
                self.send_error(404)
                return
            data = state.files[path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            data = data[:state.truncate.get(path, len(data))]
            for off in range(0, len(data), 1 << 20):
                self.wfile.write(data[off:off + (1 << 20)])
                if path in state.delay:
                    time.sleep(state.delay[path])
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
