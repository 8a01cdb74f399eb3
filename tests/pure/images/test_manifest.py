"""Manifest round trip and rejection of manifests we did not write."""

from __future__ import annotations

import json

import pytest

from osdef.images.manifest import Manifest, ManifestError, parse_manifest

GOOD = Manifest(name="debian-12", artifact="debian-12.0123456789abcdef.zst", format="fs-image",
                fs_type="ext4", compression="zstd", sha256="0" * 64, stored_size=10, size=100,
                used_size=50, source="dib", created_at="2026-01-01T00:00:00+00:00",
                recipe_digest="1" * 64, dib_version="3.43.0")


def test_round_trip():
    assert parse_manifest(GOOD.to_json()) == GOOD


@pytest.mark.parametrize("change", [
    {"format": "vmdk"}, {"compression": "gzip"}, {"artifact": "../etc/passwd"},
    {"size": "100"}, {"version": 99}, {"stored_size": True}, {"fs_type": "zfs"},
])
def test_rejects(change):
    data = json.loads(GOOD.to_json())
    data.update(change)
    with pytest.raises(ManifestError):
        parse_manifest(json.dumps(data))


def test_rejects_missing_key_and_garbage():
    data = json.loads(GOOD.to_json())
    del data["sha256"]
    with pytest.raises(ManifestError, match="sha256"):
        parse_manifest(json.dumps(data))
    with pytest.raises(ManifestError):
        parse_manifest("{trunc")
