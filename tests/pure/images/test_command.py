"""`osdef image build|list|add` through the argparse adapter."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, UTC

import pytest

from osdef.config import ImageSettings, SiteConfig
from osdef.errors import ImageError
from osdef.images import command
from osdef.images.store import ImageInfo

from tests.support.images import make_tar


def parse(argv):
    parser = argparse.ArgumentParser(prog="osdef")
    command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_add_then_list(tmp_path, capsys):
    config = SiteConfig(images=ImageSettings(cache_dir=tmp_path / "cache"))
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    tar = make_tar(tmp_path / "root.tar")
    args = parse(["image", "--recipes", str(recipes), "add", "mytar", str(tar)])
    assert args.handler(args, config) == 0
    assert "mytar:" in capsys.readouterr().out
    args = parse(["image", "--recipes", str(recipes), "list"])
    assert args.func(args, lambda: config) == 0  # osdef.cli passes a config loader
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "SOURCE", "FORMAT", "SIZE", "USED", "STORED", "AGE", "RECIPE"]
    assert out[1].split()[:3] == ["mytar", "added", "tar"]


def test_build_unknown_raises_one_line(tmp_path):
    config = SiteConfig(images=ImageSettings(cache_dir=tmp_path / "cache"))
    args = parse(["image", "--recipes", str(tmp_path), "build", "nope"])
    with pytest.raises(ImageError, match="unknown image 'nope'"):
        args.handler(args, config)


def test_default_recipes_dir_is_the_repo_images():
    assert (command.default_recipes_dir() / "debian-12.yaml").is_file()


def test_table_shows_changed_recipes():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    info = ImageInfo(name="debian-12", description="", source="dib", built=True,
                     format="fs-image", fs_type="ext4", size=1 << 30, used_size=1 << 29,
                     stored_size=300 << 20, created_at=now - timedelta(hours=5),
                     recipe_changed=True)
    line = command.format_table([info], now=now).splitlines()[1].split()
    assert line == ["debian-12", "dib", "fs-image/ext4", "1.0GiB", "512.0MiB", "300.0MiB", "5h",
                    "changed"]
