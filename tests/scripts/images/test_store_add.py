"""`ImageStore.add` of each format, read back through `Artifact.open()`, and `list()`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from osdef.errors import ImageError
from osdef.images import open_image
from osdef.images.command import format_table

from tests.support.images import (make_disk, make_ext4, make_qcow2, make_tar, read_all, sha256_file,
                       zstd_file)


def check_stored(store, art, original: bytes, fmt: str, fs_type=None):
    assert (art.format, art.manifest.fs_type) == (fmt, fs_type)
    assert art.size == len(original)
    assert read_all(art) == original
    manifest = json.loads((store.cache_dir / f"{art.name}.json").read_text())
    assert manifest["sha256"] == sha256_file(art.path) == art.sha256
    assert manifest["stored_size"] == art.path.stat().st_size
    assert manifest["source"] == "add"
    assert 0 < manifest["used_size"] <= manifest["size"]
    with open(art.path, "rb") as f:
        assert f.read(4) == b"\x28\xb5\x2f\xfd"  # stored zstd-compressed


def test_add_ext4(store_factory, tmp_path):
    store = store_factory()
    src = make_ext4(tmp_path / "fs.img")
    art = store.add("myfs", src)
    check_stored(store, art, src.read_bytes(), "fs-image", "ext4")
    assert store.names() == ["myfs"]
    assert store.ensure("myfs", allow_build=False, allow_fetch=False) == art


def test_add_zstd_ext4(store_factory, tmp_path):
    src = make_ext4(tmp_path / "fs.img")
    art = store_factory().add("myfs", zstd_file(src, tmp_path / "fs.img.zst"))
    assert art.manifest.fs_type == "ext4" and read_all(art) == src.read_bytes()


@pytest.mark.parametrize("label", ["dos", "gpt"])
def test_add_partitioned_disk(store_factory, tmp_path, label):
    src = make_disk(tmp_path / "disk.img", label)
    store = store_factory()
    check_stored(store, store.add("disk", src), src.read_bytes(), "disk-raw")


def test_add_qcow2_is_stored_as_raw(store_factory, tmp_path):
    raw = make_disk(tmp_path / "disk.img", "gpt")
    qcow = make_qcow2(raw, tmp_path / "disk.qcow2")
    store = store_factory()
    check_stored(store, store.add("q", qcow), raw.read_bytes(), "disk-raw")
    art = store.add("qz", zstd_file(qcow, tmp_path / "disk.qcow2.zst"))
    assert read_all(art) == raw.read_bytes()
    assert not list(store.cache_dir.glob(".*partial"))


def test_add_tar(store_factory, tmp_path):
    src = make_tar(tmp_path / "root.tar")
    store = store_factory()
    check_stored(store, store.add("t", src), src.read_bytes(), "tar")


def test_add_garbage_leaves_cache_alone(store_factory, tmp_path):
    store = store_factory()
    src = make_ext4(tmp_path / "fs.img")
    good = store.add("img", src)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(200_000))
    with pytest.raises(ImageError, match="not a recognised image"):
        store.add("img", junk)
    with pytest.raises(ImageError, match="is not a file"):
        store.add("img", tmp_path / "missing")
    assert store.ensure("img", allow_build=False, allow_fetch=False) == good
    assert sorted(p.name for p in store.cache_dir.iterdir()) == sorted(
        [good.path.name, "img.json", "img.lock"])


def test_re_add_replaces_and_removes_old_artifact(store_factory, tmp_path):
    store = store_factory()
    first = store.add("img", make_ext4(tmp_path / "a.img", content={"a": "1"}))
    second = store.add("img", make_ext4(tmp_path / "b.img", content={"b": "2"}))
    assert first.path != second.path and not first.path.exists()
    assert store.artifact("img") == second


def test_corrupt_artifact_fails_the_read(store_factory, tmp_path):
    store = store_factory()
    art = store.add("img", make_ext4(tmp_path / "fs.img"))
    data = bytearray(art.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    art.path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="img"):
        read_all(art)


def test_artifact_not_matching_its_manifest_fails_the_read(store_factory, tmp_path):
    """Valid zstd of the right size but another sha256: the check at EOF catches it."""
    store = store_factory()
    store.add("img", make_ext4(tmp_path / "fs.img"))
    manifest_file = store.cache_dir / "img.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["sha256"] = "0" * 64
    manifest_file.write_text(json.dumps(manifest))
    art = store.artifact("img")
    with pytest.raises(ImageError, match="does not match its manifest"):
        read_all(art)
    with pytest.raises(ImageError, match="does not match its manifest"), art.open() as f:
        f.read(art.size)  # a reader that stops at `size` gets the check too


def test_truncated_or_missing_artifact_is_not_ready(store_factory, tmp_path):
    store = store_factory()
    art = store.add("img", make_ext4(tmp_path / "fs.img"))
    with open(art.path, "r+b") as f:
        f.truncate(art.manifest.stored_size - 1)
    assert store.artifact("img") is None
    art.path.unlink()
    assert store.artifact("img") is None
    (store.cache_dir / "img.json").write_text("{broken")
    assert store.artifact("img") is None
    with pytest.raises(ImageError, match="unknown image 'img'"):
        store.ensure("img", allow_build=True, allow_fetch=True)


def test_streaming_read_in_chunks(store_factory, tmp_path):
    src = make_ext4(tmp_path / "fs.img", size_mib=24)
    art = store_factory().add("img", src)
    expected = src.read_bytes()
    got = bytearray()
    stream, size = open_image(art)
    assert size == len(expected)
    with stream as f:
        while True:
            chunk = f.read(3 << 20)
            if not chunk:
                break
            assert len(chunk) == 3 << 20 or len(got) + len(chunk) == art.size
            got += chunk
    assert bytes(got) == expected


def test_list_and_table(store_factory, tmp_path):
    store = store_factory({"debian-12": "elements: [debian-minimal]\nrelease: bookworm\n"})
    store.add("fs", make_ext4(tmp_path / "fs.img"))
    infos = {i.name: i for i in store.list()}
    assert infos["debian-12"].built is False and infos["debian-12"].source == "dib"
    assert infos["fs"].built and infos["fs"].source == "added" and infos["fs"].format == "fs-image"
    table = format_table(store.list())
    assert "not built" in table and "fs-image/ext4" in table and "16.0MiB" in table


def test_unknown_and_unbuilt_messages(store_factory):
    store = store_factory({"debian-12": "elements: [debian-minimal]\nrelease: bookworm\n"})
    with pytest.raises(ImageError, match=r"^image debian-12 is not built: run `osdef image build "
                                         r"debian-12`$"):
        store.ensure("debian-12", allow_build=False, allow_fetch=True)
    with pytest.raises(ImageError, match="unknown image 'nope'.*known: debian-12"):
        store.ensure("nope", allow_build=True, allow_fetch=True)
    with pytest.raises(ImageError, match="invalid image name"):
        store.ensure("../x", allow_build=True, allow_fetch=True)


@pytest.mark.blockdev
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_full_disk_leaves_cache_as_it_was(tmp_path):
    from osdef.config import ImageSettings
    from osdef.images import ImageStore
    cache = tmp_path / "small"
    cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(cache)], check=True)
    try:
        store = ImageStore(ImageSettings(cache_dir=cache), tmp_path, progress=None)
        small = store.add("img", make_ext4(tmp_path / "small.img", size_mib=4))
        before = sorted(p.name for p in cache.iterdir())
        big = tmp_path / "big.img"
        subprocess.run(["mkfs.ext4", "-q", "-F", str(big), "64M"], check=True, capture_output=True)
        with open(big, "r+b") as f:  # incompressible data
            f.seek(8 << 20)
            f.write(os.urandom(4 << 20))
        with pytest.raises(ImageError, match="no space left in") as exc:
            store.add("img", big)
        assert "\n" not in str(exc.value)
        assert sorted(p.name for p in cache.iterdir()) == before
        assert read_all(store.ensure("img", allow_build=False, allow_fetch=False)) == \
            (tmp_path / "small.img").read_bytes()
        assert small.path.exists()
    finally:
        subprocess.run(["umount", str(cache)], check=True)
