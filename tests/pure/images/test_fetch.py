"""URL sources from a loopback HTTP server: good file, wrong hash, truncated, missing."""

from __future__ import annotations

import hashlib
import io

import pytest

from osdef.errors import ImageError

from tests.support.images import make_disk, make_ext4, read_all, zstd_file


def url_recipe(url: str, data: bytes, fmt: str, sha: str | None = None) -> str:
    return f"url: {url}\nsha256: {sha or hashlib.sha256(data).hexdigest()}\nformat: {fmt}\n"


def test_fetch_good_file(store_factory, http_server, tmp_path):
    raw = make_ext4(tmp_path / "fs.img").read_bytes()
    packed = zstd_file(tmp_path / "fs.img", tmp_path / "fs.img.zst").read_bytes()
    http_server.files["fs.img.zst"] = packed
    progress = io.StringIO()
    store = store_factory({"web": url_recipe(http_server.url("fs.img.zst"), packed, "fs-image")},
                          progress=progress)
    with pytest.raises(ImageError, match="^image web is not downloaded: run `osdef image build web`"):
        store.ensure("web", allow_build=True, allow_fetch=False)
    art = store.ensure("web", allow_build=False, allow_fetch=True)
    assert (art.format, art.manifest.fs_type, art.size) == ("fs-image", "ext4", len(raw))
    assert read_all(art) == raw
    assert art.manifest.origin == http_server.url("fs.img.zst")
    assert art.manifest.origin_sha256 == hashlib.sha256(packed).hexdigest()
    assert "downloading" in progress.getvalue() and "100%" in progress.getvalue()
    assert store.ensure("web", allow_build=False, allow_fetch=True) == art
    assert http_server.hits["fs.img.zst"] == 1
    info = {i.name: i for i in store.list()}["web"]
    assert info.source == "url" and info.recipe_changed is False


def test_fetch_wrong_hash(store_factory, http_server, tmp_path):
    data = make_disk(tmp_path / "d.img", "gpt").read_bytes()
    http_server.files["d.img"] = data
    store = store_factory({"web": url_recipe(http_server.url("d.img"), data, "disk-raw",
                                             sha="f" * 64)})
    with pytest.raises(ImageError, match=r"sha256 is [0-9a-f]{64}, the recipe expects f{64}"):
        store.ensure("web", allow_build=False, allow_fetch=True)
    assert_cache_empty(store)


def test_fetch_truncated(store_factory, http_server, tmp_path):
    data = make_disk(tmp_path / "d.img", "gpt").read_bytes()
    http_server.files["d.img"] = data
    http_server.truncate["d.img"] = len(data) // 3
    store = store_factory({"web": url_recipe(http_server.url("d.img"), data, "disk-raw")})
    with pytest.raises(ImageError, match=rf"truncated: got {len(data) // 3} of {len(data)} bytes"):
        store.ensure("web", allow_build=False, allow_fetch=True)
    assert_cache_empty(store)


def test_fetch_missing_and_wrong_format(store_factory, http_server, tmp_path):
    data = make_disk(tmp_path / "d.img", "gpt").read_bytes()
    http_server.files["d.img"] = data
    store = store_factory({
        "gone": url_recipe(http_server.url("nothere"), data, "disk-raw"),
        "lies": url_recipe(http_server.url("d.img"), data, "fs-image"),
    })
    with pytest.raises(ImageError, match="HTTP 404"):
        store.ensure("gone", allow_build=False, allow_fetch=True)
    with pytest.raises(ImageError, match="declared format fs-image but the file holds disk-raw"):
        store.ensure("lies", allow_build=False, allow_fetch=True)
    assert_cache_empty(store)


def test_fetch_qcow2_stored_as_raw(store_factory, http_server, tmp_path):
    from tests.support.images import make_qcow2
    raw = make_disk(tmp_path / "d.img", "dos")
    data = make_qcow2(raw, tmp_path / "d.qcow2").read_bytes()
    http_server.files["d.qcow2"] = data
    store = store_factory({"q": url_recipe(http_server.url("d.qcow2"), data, "disk-qcow2")})
    art = store.build("q")
    assert art.format == "disk-raw" and read_all(art) == raw.read_bytes()


def assert_cache_empty(store):
    leftovers = [p.name for p in store.cache_dir.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_changed_url_recipe_is_fetched_again(store_factory, http_server, tmp_path):
    one = make_disk(tmp_path / "one.img", "gpt").read_bytes()
    two = make_disk(tmp_path / "two.img", "dos").read_bytes()
    http_server.files.update({"one.img": one, "two.img": two})
    store = store_factory({"web": url_recipe(http_server.url("one.img"), one, "disk-raw")})
    assert read_all(store.ensure("web", allow_build=False, allow_fetch=True)) == one
    (store.recipes_dir / "web.yaml").write_text(url_recipe(http_server.url("two.img"), two,
                                                           "disk-raw"))
    assert {i.name: i for i in store.list()}["web"].recipe_changed is True
    with pytest.raises(ImageError, match="not downloaded"):
        store.ensure("web", allow_build=False, allow_fetch=False)
    art = store.ensure("web", allow_build=False, allow_fetch=True)
    assert read_all(art) == two and http_server.hits == {"one.img": 1, "two.img": 1}
    assert len(list(store.cache_dir.glob("*.zst"))) == 1
