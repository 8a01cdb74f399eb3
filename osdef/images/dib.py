"""Run diskimage-builder for a DIB recipe and hand back its output file.

`disk-image-create` runs from the project's venv (next to sys.executable),
with the mirrors from the site config and images/elements on ELEMENTS_PATH.
Its (long) output goes to a log file; a failure becomes one ImageError line
that names the log.

Only the diskimage-builder versions in SUPPORTED_DIB build here (checked
first, one line naming the version found and what to do); the venv route
pins one (pyproject's `build` extra).  DIB 3.43 and later bootstrap with
mmdebstrap whenever it is installed, so the same recipe would give different
images on two hosts: osdef names debootstrap's own script for the release
(DIB_DEBIAN_DEBOOTSTRAP_SCRIPT, which turns that switch off), and the
manifest records the DIB version and the bootstrap tool that ran.  Filesystem outputs are
e2fsck'd once and get the recipe's fs_features (fscheck); tar outputs lose the ./dev/* entries DIB copies from the
build host.  Building the argv and the environment are pure functions.
"""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import re
import signal
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from osdef.config import ImageSettings
from osdef.errors import ImageError
from osdef.fileutil import which_sbin
from osdef.images.fscheck import check_built_image
from osdef.images.recipe import DibRecipe, Recipe
from osdef.vocab import FS_IMAGE, TAR

#: DIB output type per recipe output (raw without the `vm` element = bare filesystem).
DIB_TYPES = {FS_IMAGE: "raw", TAR: "tar"}
#: the diskimage-builder versions osdef builds with: [from, below) (docs/debian.md says why)
SUPPORTED_DIB = ((3, 40), (3, 44))
DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
MMDEBSTRAP_LINE = "mmdebstrap is installed; use it"  # what DIB's 08-debootstrap prints


@dataclass(frozen=True)
class BuildOutput:
    """What a builder produced: an uncompressed file in the work dir."""

    path: Path
    format: str  # fs-image | tar
    dib_version: str | None
    bootstrap: str | None = None  # debootstrap | mmdebstrap: what made the root


def venv_bin() -> Path:
    """The bin dir of the running Python (the project venv)."""
    return Path(sys.executable).parent


def dib_version() -> str | None:
    try:
        return importlib.metadata.version("diskimage-builder")
    except importlib.metadata.PackageNotFoundError:
        return None


def supported_text() -> str:
    (lo_major, lo_minor), (hi_major, hi_minor) = SUPPORTED_DIB
    return f">={lo_major}.{lo_minor},<{hi_major}.{hi_minor}"


def check_dib_version(found: str | None, executable: Path) -> None:
    """One clear ImageError unless diskimage-builder `found` is in SUPPORTED_DIB."""
    advice = ("use the git+venv route (make venv: it pins a supported one), or build on another "
              "host and copy the image here with `osdef image add NAME FILE` (`osdef image sync NAME` "
              "for the whole cluster)")
    if found is None or not executable.exists():
        raise ImageError(f"diskimage-builder is not installed for {sys.executable} "
                         f"(osdef image build needs diskimage-builder {supported_text()}): {advice}")
    numbers = tuple(int(n) for n in re.findall(r"\d+", found)[:2])
    if not SUPPORTED_DIB[0] <= numbers < SUPPORTED_DIB[1]:
        raise ImageError(f"diskimage-builder {found} found ({executable}), osdef image build needs "
                         f"{supported_text()}: {advice}")


def debootstrap_script(release: str) -> Path | None:
    """debootstrap's script for release, if this host has it (naming it keeps DIB off mmdebstrap)."""
    script = DEBOOTSTRAP_SCRIPTS / release
    return script if script.is_file() else None


def bootstrap_tool(lines: list[str]) -> str | None:
    """mmdebstrap or debootstrap, from DIB's log lines; None when neither ran (no Debian root)."""
    if any(MMDEBSTRAP_LINE in line for line in lines):
        return "mmdebstrap"
    return "debootstrap" if any("debootstrap" in line for line in lines) else None


def builtin_elements_dir() -> Path | None:
    try:
        import diskimage_builder
    except ImportError:
        return None
    return Path(diskimage_builder.__file__).parent / "elements"


def missing_elements(elements: tuple[str, ...], search: list[Path]) -> list[str]:
    """Elements of the recipe found in none of the element dirs."""
    return [e for e in elements if not any((d / e).is_dir() for d in search)]


def dib_environment(settings: ImageSettings, dib: DibRecipe, elements_dir: Path,
                    base: dict[str, str]) -> dict[str, str]:
    """The environment for disk-image-create (pure)."""
    env = dict(base)
    env["PATH"] = f"{venv_bin()}:{base.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    if not env.get("HOME"):
        env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
    paths = [str(elements_dir)]
    if base.get("ELEMENTS_PATH"):
        paths.append(base["ELEMENTS_PATH"])
    env["ELEMENTS_PATH"] = ":".join(paths)
    env["DIB_RELEASE"] = dib.release
    env["DIB_DISTRIBUTION_MIRROR"] = settings.debian_mirror
    env["DIB_DEBIAN_SECURITY_MIRROR"] = settings.debian_security_mirror
    if settings.build_tmp_dir is not None:
        env["TMP_DIR"] = str(settings.build_tmp_dir)
    script = debootstrap_script(dib.release)
    if script is not None:  # the same bootstrap tool on every host, mmdebstrap installed or not
        env["DIB_DEBIAN_DEBOOTSTRAP_SCRIPT"] = str(script)
    env.update(dib.environment)
    return env


def dib_command(executable: Path, dib: DibRecipe, output_base: Path) -> list[str]:
    """The disk-image-create argv (pure)."""
    argv = [str(executable), "-a", dib.architecture, "-t", DIB_TYPES[dib.output],
            "-o", str(output_base)]
    if dib.packages:
        argv += ["-p", ",".join(dib.packages)]
    return argv + list(dib.elements)


class DibBuilder:
    """Builds DIB recipes; call it with (recipe, work_dir)."""

    def __init__(self, settings: ImageSettings, elements_dir: Path, log_path: Path,
                 echo: TextIO | None = None) -> None:
        self.settings = settings
        self.elements_dir = elements_dir
        self.log_path = log_path
        self.echo = echo

    def __call__(self, recipe: Recipe, work_dir: Path) -> BuildOutput:
        dib = recipe.source
        assert isinstance(dib, DibRecipe)
        executable = venv_bin() / "disk-image-create"
        check_dib_version(dib_version(), executable)
        search = [self.elements_dir] + [p for p in [builtin_elements_dir()] if p]
        missing = missing_elements(dib.elements, search)
        if missing:
            raise ImageError(f"{recipe.path}: DIB element {missing[0]!r} not found in "
                             f"{' or '.join(str(p) for p in search)}")
        for tool, package in (("sudo", "sudo"), ("debootstrap", "debootstrap")):
            if which_sbin(tool) is None:
                raise ImageError(f"diskimage-builder needs {tool}: apt-get install {package}")
        if self.settings.build_tmp_dir is not None:
            self.settings.build_tmp_dir.mkdir(parents=True, exist_ok=True)
        output_base = work_dir / recipe.name
        env = dib_environment(self.settings, dib, self.elements_dir, dict(os.environ))
        argv = dib_command(executable, dib, output_base)
        rc, last, bootstrap = self._run(argv, env, work_dir)
        if rc != 0:
            raise ImageError(f"diskimage-builder failed for {recipe.name} (exit {rc}): {last}; "
                             f"full log: {self.log_path}")
        produced = output_base.with_name(f"{recipe.name}.{DIB_TYPES[dib.output]}")
        if not produced.is_file():
            raise ImageError(f"diskimage-builder reported success but wrote no {produced}; "
                             f"full log: {self.log_path}")
        if dib.output == FS_IMAGE:
            check_built_image(produced, dib.fs_type, dib.fs_features)
        if dib.output == TAR:
            stripped = work_dir / f"{recipe.name}.nodev.tar"
            strip_dev_entries(produced, stripped)
            produced.unlink()
            produced = stripped
        return BuildOutput(path=produced, format=dib.output, dib_version=dib_version(),
                           bootstrap=bootstrap)

    def _run(self, argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str | None]:
        """DIB's exit code, its most telling error line, and the bootstrap tool that ran."""
        strong = weak = tail = ""
        boot_lines: list[str] = []
        with open(self.log_path, "w", encoding="utf-8") as log:
            log.write("# " + " ".join(argv) + "\n")
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace", start_new_session=True)
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    log.write(line)
                    if self.echo is not None:
                        self.echo.write(line)
                    text = _strip_timestamp(line)
                    if not text:
                        continue
                    tail = text
                    if "bootstrap" in text:
                        boot_lines.append(text)
                    level = error_level(text)
                    if level == 2:
                        strong = text
                    elif level == 1:
                        weak = text
                rc = proc.wait()
            except BaseException:
                # DIB runs sudo, chroot and mounts: TERM the whole group so its
                # own cleanup traps unmount, then wait for it.
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                raise
        return rc, (strong or weak or tail or "no output")[:300], bootstrap_tool(boot_lines)


_TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| ")


def _strip_timestamp(line: str) -> str:
    return _TS.sub("", line.rstrip("\n")).strip()


_STRONG = re.compile(r"^(E: |ERROR|Error: |error: |debootstrap: |\S+: not found)")
_WEAK = re.compile(r"\b(failed|Failed|FAILED|not found)\b")
_NOISE = re.compile(r"^E: Can not write log|system_bus_socket")


def error_level(text: str) -> int:
    """2 for a line that states a DIB/apt error, 1 for one that hints at one, else 0."""
    if _NOISE.search(text):
        return 0
    if _STRONG.search(text):
        return 2
    return 1 if _WEAK.search(text) else 0


def strip_dev_entries(src: Path, dest: Path) -> int:
    """Copy a tar without its ./dev/* entries (the build host's device nodes).

    Keeps ./dev itself.  Returns how many entries were dropped.
    """
    dropped = 0
    with tarfile.open(src, "r|") as tin, open(dest, "xb") as out, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tout:
        for member in tin:
            path = member.name[2:] if member.name.startswith("./") else member.name.lstrip("/")
            if path.startswith("dev/"):
                dropped += 1
                continue
            fileobj = tin.extractfile(member) if member.isreg() else None
            tout.addfile(member, fileobj)
    return dropped
