"""Recipe parsing and digests (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from osdef.errors import ImageError
from osdef.images.recipe import DibRecipe, UrlRecipe, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[3]
SHA = "a" * 64


def parse(doc: str, name: str = "x"):
    return parse_recipe(name, yaml.safe_load(doc), Path(f"images/{name}.yaml"))


def test_dib_recipe():
    r = parse("elements: [debian-minimal]\nrelease: bookworm\npackages: [openssh-server]\n")
    assert r.kind == "dib"
    assert r.source == DibRecipe(elements=("debian-minimal",), release="bookworm",
                                 packages=("openssh-server",), output="fs-image", fs_type="ext4")


def test_dib_recipe_fs_features():
    r = parse("elements: [a]\nrelease: b\nfs_features: [metadata_csum_seed]\n")
    assert r.source.fs_features == ("metadata_csum_seed",)
    assert r.digest() != parse("elements: [a]\nrelease: b\n").digest()


def test_url_recipe():
    r = parse(f"url: http://h/x.raw\nsha256: {SHA.upper()}\nformat: disk-qcow2\n")
    assert r.kind == "url"
    assert r.source == UrlRecipe(url="http://h/x.raw", sha256=SHA, format="disk-qcow2")


@pytest.mark.parametrize("doc, message", [
    ("url: http://h/x\nformat: tar\n", "url needs a sha256"),
    (f"url: http://h/x\nsha256: {SHA[:10]}\nformat: tar\n", "64 hex digits"),
    (f"url: http://h/x\nsha256: {SHA}\nformat: vmdk\n", "format must be one of"),
    (f"url: http://h/x\nsha256: {'1' * 64}\nformat: tar\n", "sha256 must be quoted"),
    (f"url: ftp://h/x\nsha256: {SHA}\nformat: tar\n", "url must start with"),
    ("elements: [debian-minimal]\n", "release must be a non-empty string"),
    ("elements: []\nrelease: bookworm\n", "at least one DIB element"),
    ("elements: [debian-minimal]\nrelease: b\npackages: ['rm -rf']\n", "packages: invalid entry"),
    ("elements: [debian-minimal]\nrelease: b\noutput: qcow2\n", "output must be one of"),
    ("elements: [debian-minimal]\nrelease: b\ncolour: red\n", "unknown key 'colour'"),
    ("elements: [debian-minimal]\nrelease: b\nenvironment: {lower: x}\n", "not a variable"),
    ("elements: [a]\nrelease: b\nfs_features: [huge_dir]\n", "fs_features: 'huge_dir' is not one of"),
    ("elements: [a]\nrelease: b\noutput: tar\nfs_features: [metadata_csum_seed]\n",
     "fs_features only applies to output: fs-image"),
    ("release: bookworm\n", "either 'elements'"),
    ("- a\n", "must be a mapping"),
])
def test_bad_recipes_name_file_and_key(doc, message):
    with pytest.raises(ImageError, match=message) as exc:
        parse(doc)
    assert "images/x.yaml" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_bad_image_name():
    with pytest.raises(ImageError, match="invalid image name"):
        parse("elements: [a]\nrelease: b\n", name="../etc")


def test_digest_follows_recipe_and_local_elements(tmp_path):
    elements = tmp_path / "elements"
    (elements / "mine").mkdir(parents=True)
    script = elements / "mine" / "install.d"
    script.mkdir()
    (script / "10-x").write_text("echo one\n")
    r1 = parse("elements: [debian-minimal, mine]\nrelease: bookworm\n")
    r2 = parse("elements: [debian-minimal, mine]\nrelease: trixie\n")
    d1 = r1.digest([elements])
    assert d1 == parse("elements: [debian-minimal, mine]\nrelease: bookworm\n").digest([elements])
    assert d1 != r2.digest([elements])
    (script / "10-x").write_text("echo two\n")
    assert r1.digest([elements]) != d1


@pytest.mark.parametrize("name", ["debian-12", "debian-13"])
def test_shipped_recipes(name):
    r = load_recipe(REPO / "images" / f"{name}.yaml")
    assert r.kind == "dib" and r.source.output == "fs-image"
    for pkg in ("grub-pc", "openssh-server", "ifupdown", "isc-dhcp-client"):
        assert pkg in r.source.packages
    assert "debian-minimal" in r.source.elements


def test_all_shipped_recipes_parse():
    for path in sorted((REPO / "images").glob("*.yaml")):
        load_recipe(path)
