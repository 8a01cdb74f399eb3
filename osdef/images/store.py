"""The image cache: recipes in, ready artifacts out, safe under concurrency.

`ImageStore.ensure(name, ...)` returns a ready Artifact, building (DIB) or
fetching (URL) it first when it is missing and the caller allows it.  Every
producer runs under the image's flock; the artifact is written under a
temporary name, fsync'd, renamed, and only then committed by writing the
manifest (atomically).  So concurrent callers build once, and a killed build
leaves only partial files that are never taken for an image (and are removed
by the next build).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import TextIO

from osdef.disk.units import MiB
from osdef.config import ImageSettings
from osdef.errors import ImageError
from osdef.images import cachefiles as cf
from osdef.images.artifact import Artifact, parse_time
from osdef.images.dib import BuildOutput, DibBuilder
from osdef.images.fetch import download
from osdef.images.ingest import Stored, ingest_file
from osdef.images.manifest import Manifest, ManifestError, parse_manifest
from osdef.images.recipe import Recipe, UrlRecipe, check_name, load_recipe

#: A builder turns a DIB recipe into an uncompressed file inside work_dir.
Builder = Callable[[Recipe, Path], BuildOutput]


@dataclass(frozen=True)
class ImageInfo:
    """One line of `osdef image list`."""

    name: str
    description: str
    source: str  # dib | url | added
    built: bool
    format: str | None = None
    fs_type: str | None = None
    size: int | None = None  # uncompressed
    used_size: int | None = None
    stored_size: int | None = None
    created_at: datetime | None = None
    recipe_changed: bool | None = None  # None: no recipe, or not built

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.created_at is None:
            return None
        now = now or datetime.now(UTC)
        return max(0.0, (now - self.created_at).total_seconds())


class ImageStore:
    """Recipes from recipes_dir, artifacts in settings.cache_dir."""

    def __init__(self, settings: ImageSettings, recipes_dir: Path, *,
                 builder: Builder | None = None, progress: TextIO | None = sys.stderr,
                 echo_build: bool = False) -> None:
        self.settings = settings
        self.recipes_dir = Path(recipes_dir)
        self.cache_dir = Path(settings.cache_dir)
        self.progress = progress
        self._builder = builder
        self._echo_build = echo_build

    # -- queries ---------------------------------------------------------------

    @property
    def elements_dir(self) -> Path:
        return self.recipes_dir / "elements"

    def recipe_names(self) -> list[str]:
        if not self.recipes_dir.is_dir():
            return []
        return sorted(p.stem for p in self.recipes_dir.glob("*.yaml") if _valid_name(p.stem))

    def recipe(self, name: str) -> Recipe | None:
        path = self.recipes_dir / f"{check_name(name)}.yaml"
        return load_recipe(path) if path.is_file() else None

    def cached_names(self) -> list[str]:
        if not self.cache_dir.is_dir():
            return []
        return sorted(p.stem for p in self.cache_dir.glob("*.json") if _valid_name(p.stem))

    def names(self) -> list[str]:
        """Known images: recipes plus images registered in the cache."""
        return sorted(set(self.recipe_names()) | set(self.cached_names()))

    def artifact(self, name: str) -> Artifact | None:
        """The committed artifact of name, or None when there is no valid one.

        Cheap check (manifest parses, names an existing file of the recorded
        size); the sha256 is checked while the artifact is read.
        """
        path = cf.manifest_path(self.cache_dir, check_name(name))
        try:
            manifest = parse_manifest(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ManifestError):
            return None
        if manifest.name != name:
            return None
        art_path = self.cache_dir / manifest.artifact
        try:
            if art_path.stat().st_size != manifest.stored_size:
                return None
        except OSError:
            return None
        return Artifact(name=name, path=art_path, manifest=manifest)

    def recipe_digest(self, recipe: Recipe) -> str:
        return recipe.digest([self.elements_dir])

    def list(self) -> list[ImageInfo]:
        infos = []
        for name in self.names():
            try:
                recipe = self.recipe(name)
            except ImageError:
                recipe = None  # a broken recipe still lists its cached image
            art = self.artifact(name)
            source = recipe.kind if recipe else "added"
            description = recipe.description if recipe else ""
            if art is None:
                infos.append(ImageInfo(name=name, description=description, source=source,
                                       built=False))
                continue
            m = art.manifest
            changed = None
            if recipe is not None and m.recipe_digest is not None:
                changed = m.recipe_digest != self.recipe_digest(recipe)
            elif recipe is not None and m.source == "add":
                source = "added"
            infos.append(ImageInfo(
                name=name, description=description or m.origin or "", source=source,
                built=True, format=m.format, fs_type=m.fs_type, size=m.size,
                used_size=m.used_size, stored_size=m.stored_size,
                created_at=parse_time(m.created_at), recipe_changed=changed))
        return infos

    # -- producing -------------------------------------------------------------

    def ensure(self, name: str, *, allow_build: bool, allow_fetch: bool) -> Artifact:
        """A ready artifact for name; build or fetch it (once, under the lock) if allowed.

        A DIB image built from an older recipe is still returned (`image list`
        shows it as changed; rebuilding is the admin's call).  A download whose
        recipe now names another url/sha256 is not: it is fetched again.
        """
        art = self._current(name)
        if art is not None:
            return art
        recipe = self._require_recipe(name)
        if recipe.kind == "dib" and not allow_build:
            raise ImageError(f"image {name} is not built: run `osdef image build {name}`")
        if recipe.kind == "url" and not allow_fetch:
            raise ImageError(f"image {name} is not downloaded: run `osdef image build {name}`")
        with cf.image_lock(self.cache_dir, name, on_wait=lambda: self._say(
                f"image {name}: waiting for another process that is preparing it")):
            art = self._current(name)
            if art is not None:
                return art
            return self._produce(recipe)

    def _current(self, name: str) -> Artifact | None:
        art = self.artifact(name)
        if art is None or art.manifest.source != "url":
            return art
        recipe = self.recipe(name)
        if recipe is not None and recipe.kind == "url" and \
                art.manifest.recipe_digest != self.recipe_digest(recipe):
            return None  # the recipe now pins other content
        return art

    def refresh(self, name: str) -> Artifact:
        """Like build(), but keep a cached artifact made from the current recipe."""
        recipe = self._require_recipe(name)
        with cf.image_lock(self.cache_dir, name, on_wait=lambda: self._say(
                f"image {name}: waiting for another process that is preparing it")):
            art = self.artifact(name)
            if art is not None and art.manifest.recipe_digest == self.recipe_digest(recipe):
                return art
            return self._produce(recipe)

    def build(self, name: str) -> Artifact:
        """Build (DIB) or download (URL) name now, replacing a cached artifact."""
        recipe = self._require_recipe(name)
        with cf.image_lock(self.cache_dir, name, on_wait=lambda: self._say(
                f"image {name}: waiting for another process that is preparing it")):
            return self._produce(recipe)

    def add(self, name: str, path: Path) -> Artifact:
        """Register an existing raw/qcow2/tar image file (zstd-compressed or not)."""
        check_name(name)
        path = Path(path)
        if not path.is_file():
            raise ImageError(f"cannot add image {name}: {path} is not a file")
        with cf.image_lock(self.cache_dir, name):
            cf.remove_partials(self.cache_dir, name)
            self._say(f"image {name}: storing {path}")
            stored = ingest_file(path, self.cache_dir, name, work_dir=self._work_root())
            return self._commit(name, stored, source="add", origin=str(path.resolve()))

    # -- internals -------------------------------------------------------------

    def _require_recipe(self, name: str) -> Recipe:
        recipe = self.recipe(name)
        if recipe is None:
            known = ", ".join(self.names()) or "none"
            raise ImageError(f"unknown image {name!r}: no recipe {self.recipes_dir}/{name}.yaml "
                             f"and nothing added under that name (known: {known})")
        return recipe

    def _work_root(self) -> Path:
        root = self.settings.build_tmp_dir or self.cache_dir
        cf.ensure_dir(root)
        return root

    def _produce(self, recipe: Recipe) -> Artifact:
        """Build or fetch recipe and commit it (caller holds the lock)."""
        cf.ensure_dir(self.cache_dir)
        cf.remove_partials(self.cache_dir, recipe.name)
        digest = self.recipe_digest(recipe)
        if recipe.kind == "url":
            return self._fetch(recipe, digest)
        return self._build(recipe, digest)

    def _fetch(self, recipe: Recipe, digest: str) -> Artifact:
        src = recipe.source
        assert isinstance(src, UrlRecipe)
        dest = cf.temp_path(self.cache_dir, recipe.name, "download")
        self._say(f"image {recipe.name}: downloading {src.url}")
        try:
            download(src.url, src.sha256, dest, label=f"image {recipe.name}",
                     progress=self.progress)
            stored = ingest_file(dest, self.cache_dir, recipe.name, expect=src.format,
                                 work_dir=self._work_root())
        finally:
            cf.remove_quietly(dest)
        if src.fs_type and stored.fs_type != src.fs_type:
            cf.remove_quietly(stored.path)
            raise ImageError(f"{recipe.path}: fs_type is {src.fs_type} but {src.url} holds "
                             f"{stored.fs_type}")
        return self._commit(recipe.name, stored, source="url", recipe_digest=digest,
                            origin=src.url, origin_sha256=src.sha256)

    def _build(self, recipe: Recipe, digest: str) -> Artifact:
        log_path = self.cache_dir / f"{recipe.name}.build.log"
        builder = self._builder or DibBuilder(
            self.settings, self.elements_dir, log_path,
            echo=self.progress if self._echo_build else None)
        work = Path(tempfile.mkdtemp(prefix=f".{recipe.name}.build.", suffix=cf.PARTIAL_SUFFIX,
                                     dir=self._work_root()))
        try:
            self._say(f"image {recipe.name}: building with diskimage-builder (log: {log_path})")
            output = builder(recipe, work)
            stored = ingest_file(output.path, self.cache_dir, recipe.name, expect=output.format,
                                 work_dir=work)
        except OSError as exc:
            raise cf.no_space_or(exc, work, f"building image {recipe.name}") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self._commit(recipe.name, stored, source="dib", recipe_digest=digest,
                            dib_version=output.dib_version, bootstrap=output.bootstrap)

    def _commit(self, name: str, stored: Stored, *, source: str, recipe_digest: str | None = None,
                dib_version: str | None = None, bootstrap: str | None = None,
                origin: str | None = None, origin_sha256: str | None = None) -> Artifact:
        final_name = cf.artifact_name(name, stored.sha256)
        final = self.cache_dir / final_name
        manifest = Manifest(
            name=name, artifact=final_name, format=stored.format, fs_type=stored.fs_type,
            compression="zstd", sha256=stored.sha256, stored_size=stored.stored_size,
            size=stored.size, used_size=stored.used_size, source=source,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            recipe_digest=recipe_digest, dib_version=dib_version, bootstrap=bootstrap, origin=origin,
            origin_sha256=origin_sha256)
        try:
            os.replace(stored.path, final)
            cf.fsync_dir(self.cache_dir)
        except OSError as exc:
            cf.remove_quietly(stored.path)
            raise cf.no_space_or(exc, self.cache_dir, f"storing image {name}") from None
        previous = self.artifact(name)
        try:
            cf.write_atomic(cf.manifest_path(self.cache_dir, name), manifest.to_json())
        except ImageError:
            if previous is None or previous.path != final:
                cf.remove_quietly(final)  # leave the cache as it was
            raise
        cf.remove_stale_artifacts(self.cache_dir, name, keep=final_name)
        self._say(f"image {name}: ready ({stored.format}, {stored.size / MiB:.0f} MiB, "
                  f"{stored.stored_size / MiB:.0f} MiB stored)")
        return Artifact(name=name, path=final, manifest=manifest)

    def _say(self, text: str) -> None:
        if self.progress is not None:
            print(text, file=self.progress, flush=True)


def _valid_name(stem: str) -> bool:
    try:
        check_name(stem)
    except ImageError:
        return False
    return True
