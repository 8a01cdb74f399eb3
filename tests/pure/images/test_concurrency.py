"""Per-image lock and atomic commit: one producer for many callers, no valid
artifact after a killed run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from osdef.errors import ImageError
from osdef.images.dib import BuildOutput

from tests.support.images import make_ext4, read_all

REPO = Path(__file__).resolve().parents[3]

WORKER = """
import hashlib, json, sys
from pathlib import Path
from osdef.config import ImageSettings
from osdef.images import ImageStore
store = ImageStore(ImageSettings(cache_dir=Path(sys.argv[1])), Path(sys.argv[2]))
art = store.ensure(sys.argv[3], allow_build=False, allow_fetch=True)
h = hashlib.sha256()
with art.open() as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(json.dumps({"path": str(art.path), "size": art.size, "content": h.hexdigest()}))
"""


def start_worker(cache: Path, recipes: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(cache), str(recipes), name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def url_setup(tmp_path: Path, http_server, delay: float):
    image = make_ext4(tmp_path / "fs.img", size_mib=8,
                      content={"big": os.urandom(3 << 20).hex()})  # ~6 MiB of data
    data = image.read_bytes()
    http_server.files["fs.img"] = data
    http_server.delay["fs.img"] = delay
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "web.yaml").write_text(
        f"url: {http_server.url('fs.img')}\nsha256: {hashlib.sha256(data).hexdigest()}\n"
        "format: fs-image\n")
    return data, recipes, tmp_path / "cache"


def test_eight_processes_one_download(tmp_path, http_server):
    data, recipes, cache = url_setup(tmp_path, http_server, delay=0.1)
    workers = [start_worker(cache, recipes, "web") for _ in range(8)]
    results = []
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        results.append(json.loads(out))
    assert http_server.hits["fs.img"] == 1
    expected = hashlib.sha256(data).hexdigest()
    assert all(r["content"] == expected and r["size"] == len(data) for r in results)
    assert len({r["path"] for r in results}) == 1
    assert not list(cache.glob(".*"))


def test_killed_download_leaves_nothing_valid(tmp_path, http_server):
    from osdef.config import ImageSettings
    from osdef.images import ImageStore
    data, recipes, cache = url_setup(tmp_path, http_server, delay=2.0)
    worker = start_worker(cache, recipes, "web")
    try:
        deadline = time.monotonic() + 60
        while not list(cache.glob(".web.*.partial")):
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    store = ImageStore(ImageSettings(cache_dir=cache), recipes, progress=None)
    assert store.artifact("web") is None
    with pytest.raises(ImageError, match="not downloaded"):
        store.ensure("web", allow_build=False, allow_fetch=False)
    http_server.delay.clear()
    art = store.ensure("web", allow_build=False, allow_fetch=True)
    assert read_all(art) == data
    assert not list(cache.glob(".*partial"))  # the killed run's leftovers are gone
    assert http_server.hits["fs.img"] == 2


class FakeBuilder:
    """Stands in for DIB: copies a prepared ext4 image, slowly, counting calls."""

    def __init__(self, image: Path, delay: float = 0.3) -> None:
        self.image, self.delay, self.calls = image, delay, 0
        self._lock = threading.Lock()

    def __call__(self, recipe, work_dir: Path) -> BuildOutput:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        out = work_dir / f"{recipe.name}.raw"
        out.write_bytes(self.image.read_bytes())
        return BuildOutput(path=out, format="fs-image", dib_version="fake")


DIB_RECIPE = "elements: [debian-minimal]\nrelease: bookworm\n"


def test_eight_threads_one_build(store_factory, tmp_path):
    fake = FakeBuilder(make_ext4(tmp_path / "fs.img"))
    store = store_factory({"d": DIB_RECIPE}, builder=fake)
    results: list = []
    errors: list = []

    def run() -> None:
        try:
            results.append(store.ensure("d", allow_build=True, allow_fetch=False))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and fake.calls == 1
    assert len({r.sha256 for r in results}) == 1 and len(results) == 8
    assert results[0].manifest.dib_version == "fake"
    assert results[0].manifest.recipe_digest == store.recipe_digest(store.recipe("d"))


def test_orphans_are_not_images_and_are_cleaned(store_factory, tmp_path):
    fake = FakeBuilder(make_ext4(tmp_path / "fs.img"), delay=0)
    store = store_factory({"d": DIB_RECIPE}, builder=fake)
    store.cache_dir.mkdir()
    orphan = store.cache_dir / "d.0123456789abcdef.zst"  # renamed, manifest never written
    orphan.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(100))
    partial = store.cache_dir / ".d.zst.abcdef.partial"
    partial.write_bytes(b"half")
    workdir = store.cache_dir / ".d.build.xyz.partial"
    workdir.mkdir()
    (workdir / "d.raw").write_bytes(b"half")
    assert store.artifact("d") is None
    art = store.ensure("d", allow_build=True, allow_fetch=False)
    assert sorted(p.name for p in store.cache_dir.iterdir()) == sorted(
        ["d.json", "d.lock", art.path.name])


def test_failed_build_leaves_cache_as_it_was(store_factory, tmp_path):
    fake = FakeBuilder(make_ext4(tmp_path / "fs.img"), delay=0)
    store = store_factory({"d": DIB_RECIPE}, builder=fake)
    good = store.build("d")

    def broken(recipe, work_dir):
        (work_dir / "d.raw").write_bytes(b"partial output")
        raise ImageError("diskimage-builder failed for d (exit 1): E: boom; full log: x")

    store._builder = broken
    with pytest.raises(ImageError, match="boom"):
        store.build("d")
    assert store.artifact("d") == good
    assert sorted(p.name for p in store.cache_dir.iterdir()) == sorted(
        ["d.json", "d.lock", good.path.name])
