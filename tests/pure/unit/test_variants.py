"""Variant files: the shipped ones load; schema errors name file and key."""

import pytest

from osdef import variants
from osdef.errors import VariantError
from osdef.paths import data_root


def test_shipped_variants():
    catalog = variants.load_dir(data_root() / "variants")
    assert {"debian", "debian-12", "debian-13"} <= set(catalog.names())
    assert catalog.default().name == "debian"
    assert catalog.variants_list().splitlines()[0] == "debian"
    assert catalog.get("debian-12").image == "debian-12"
    assert catalog.get(None).name == "debian"


def test_unknown_variant_lists_valid_ones():
    catalog = variants.load_dir(data_root() / "variants")
    with pytest.raises(VariantError, match="unknown variant 'ubuntu'; valid variants: .*debian-12"):
        catalog.get("ubuntu")


@pytest.mark.parametrize("text, needle", [
    ("description: x\n", "image: required"),
    ("description: x\nimage: y\nfilesystem: zfs\n", "filesystem: 'zfs' is not one of ext4, xfs, btrfs"),
    ("description: x\nimage: y\npartition_table: bsd\n", "partition_table:"),
    ("description: x\nimage: y\nboot: uboot\n", "boot:"),
    ("description: x\nimage: y\ncolour: red\n", "colour: unknown key"),
    ("description: x\nimage: y\nskip_hooks: hostname\n", "skip_hooks: must be a list"),
    ("- a\n", "must be a YAML mapping"),
    ("description: [\n", "not valid YAML"),
])
def test_schema_errors(tmp_path, text, needle):
    f = tmp_path / "v1.yaml"
    f.write_text(text)
    with pytest.raises(VariantError) as info:
        variants.load_file(f)
    assert str(f) in str(info.value) and needle in str(info.value)


def test_bad_file_name(tmp_path):
    f = tmp_path / "Bad Name.yaml"
    f.write_text("description: x\nimage: y\n")
    with pytest.raises(VariantError, match="not a valid variant name"):
        variants.load_file(f)


def test_two_defaults_rejected(tmp_path):
    for n in ("a", "b"):
        (tmp_path / f"{n}.yaml").write_text("description: x\nimage: y\ndefault: true\n")
    with pytest.raises(VariantError, match="more than one variant says default"):
        variants.load_dir(tmp_path)


def test_site_variants_join_the_builtin_ones(tmp_path):
    site = tmp_path / "variants.d"
    site.mkdir()
    (site / "web.yaml").write_text("description: our web servers\nimage: debian-12\n"
                                   "os_parameters: {swap_size: 1G}\n")
    catalog = variants.load_dir(data_root() / "variants", site)
    assert catalog.names()[-1] == "web" and catalog.get("web").os_parameters == {"swap_size": "1G"}
    assert catalog.default().name == "debian"
    assert variants.load_dir(data_root() / "variants", tmp_path / "missing").names() == \
        variants.load_dir(data_root() / "variants").names()


def test_a_site_variant_cannot_shadow_a_builtin_one(tmp_path):
    (tmp_path / "debian-12.yaml").write_text("description: mine\nimage: debian-12\n")
    with pytest.raises(VariantError, match="already defined by .*variants/debian-12.yaml"):
        variants.load_dir(data_root() / "variants", tmp_path)
