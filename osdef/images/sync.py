"""The same image on every node: `osdef image sync` and `osdef image list --cluster`.

Master side (`sync`):

1. the master's artifact for NAME is hashed in full (it must match its manifest);
2. it is hard-linked, with its manifest, to staging names in the cache
   (`.NAME.sync-<token>.partial`, never taken for an image) and
   `gnt-cluster copyfile` puts them at the same paths on the other nodes,
   with the new agreement (osdef.images.agreement: NAME's sha256 added),
   staged next to the agreement file;
3. `gnt-cluster command osdef image node-receive …` makes each node hash
   the staged file, compare it with the master's sha256 and commit it into
   its own cache under the image lock (a node that already holds it only
   re-hashes its copy), then install the staged agreement atomically (the
   master, last, too);
4. `gnt-cluster command osdef image node-report` reads back, per node, the
   image digest and the agreement: the report has one line per node.

Before copying, every node is probed for the staged files' unique names: a
node that sees them shares the directory with the master (a NAS) and is not
copied to, since scp onto the file itself would truncate it.

Node side: `receive()` and `report()`, printed as one `OSDEF-NODE` line each.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import sys
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import Any, TextIO

from osdef.disk.units import MiB
from osdef.config import ImageSettings
from osdef.errors import ImageError
from osdef.images import agreement
from osdef.images import cachefiles as cf
from osdef.images.artifact import Artifact
from osdef.images.cluster import GanetiTools, NodeOutput, node_json
from osdef.images.manifest import ManifestError, parse_manifest
from osdef.images.recipe import check_name
from osdef.images.store import ImageStore

_SYNC_TAG = "sync-"


def node_name() -> str:
    """This node's name as Ganeti knows it (nodes' hostnames are their FQDNs)."""
    return socket.gethostname()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(MiB), b""):
                h.update(block)
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror}") from None
    return h.hexdigest()


@dataclass(frozen=True)
class NodeState:
    """One line of `image sync` / `image list --cluster`."""

    node: str
    image: str
    sha256: str | None  # the node's stored sha256; None: no image
    agreed: str | None  # the node's agreement for image; None: none
    status: str  # what happened / what it means
    ok: bool


# -- node side ------------------------------------------------------------------

def receive(settings: ImageSettings, name: str, staged_artifact: Path, staged_manifest: Path,
            sha256: str, staged_agreement: Path | None = None,
            agreement_sha256: str | None = None) -> dict[str, Any]:
    """Commit a staged artifact into this node's cache after checking its sha256, then
    install the staged agreement (also when the image failed: creates then refuse here)."""
    result = _receive_image(settings, name, staged_artifact, staged_manifest, sha256)
    if staged_agreement is not None and agreement_sha256 is not None:
        problem = _install_agreement(settings.agreement_file, staged_agreement, agreement_sha256)
        if problem:
            result = {**result, "ok": False, "status": f"{result['status']}; {problem}"}
    return result


def _install_agreement(target: Path, staged: Path, sha256: str) -> str | None:
    """Atomically put the master's agreement in place; the problem, None when done."""
    if staged.is_file():
        got = sha256_of(staged)
        if got != sha256:
            cf.remove_quietly(staged)
            return f"the agreement arrived damaged (sha256 {got})"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if staged.parent == target.parent:
                os.replace(staged, target)
            else:
                cf.write_atomic(target, staged.read_text(encoding="utf-8"))
                cf.remove_quietly(staged)
            cf.fsync_dir(target.parent)
        except (OSError, ImageError) as exc:
            return f"cannot install the agreement {target}: {getattr(exc, 'strerror', None) or exc}"
        return None
    if target.is_file() and sha256_of(target) == sha256:
        return None  # a directory shared with a node that installed it already
    return f"the agreement did not arrive ({staged}): see gnt-cluster copyfile's error"


def _receive_image(settings: ImageSettings, name: str, staged_artifact: Path,
                   staged_manifest: Path, sha256: str) -> dict[str, Any]:
    check_name(name)
    store = ImageStore(settings, Path("/nonexistent"), progress=None)
    cache = store.cache_dir
    node = node_name()
    with cf.image_lock(cache, name):
        current = store.artifact(name)
        if current is not None and current.sha256 == sha256:
            got = sha256_of(current.path)
            for p in (staged_artifact, staged_manifest):
                if p.parent == cache and p.name.startswith(f".{name}.{_SYNC_TAG}"):
                    cf.remove_quietly(p)
            if got != sha256:
                return {"node": node, "image": name, "sha256": got, "ok": False,
                        "status": f"its copy {current.path} is corrupt (sha256 {got}): "
                                  f"remove {cf.manifest_path(cache, name)} and sync again"}
            return {"node": node, "image": name, "sha256": got, "ok": True,
                    "status": "already current (sha256 verified)"}
        if not staged_artifact.is_file() or not staged_manifest.is_file():
            return {"node": node, "image": name, "sha256": current.sha256 if current else None,
                    "ok": False, "status": f"the copy from the master did not arrive "
                                           f"({staged_artifact}): see gnt-cluster copyfile's error"}
        try:
            manifest = parse_manifest(staged_manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ManifestError) as exc:
            return {"node": node, "image": name, "sha256": None, "ok": False,
                    "status": f"the staged manifest is unreadable ({exc})"}
        got = sha256_of(staged_artifact)
        if got != sha256 or manifest.sha256 != sha256 or manifest.name != name:
            cf.remove_quietly(staged_artifact)
            cf.remove_quietly(staged_manifest)
            return {"node": node, "image": name, "sha256": current.sha256 if current else None,
                    "ok": False, "status": f"the copy arrived damaged (sha256 {got}); "
                                           "the cache was left as it was"}
        final = cache / manifest.artifact
        try:
            shutil.move(str(staged_artifact), final)
            cf.fsync_dir(cache)
        except OSError as exc:
            raise cf.no_space_or(exc, cache, f"storing image {name}") from None
        cf.write_atomic(cf.manifest_path(cache, name), manifest.to_json())
        cf.remove_quietly(staged_manifest)
        cf.remove_stale_artifacts(cache, name, keep=manifest.artifact)
        before = current.sha256[:16] if current else "none"
        return {"node": node, "image": name, "sha256": got, "ok": True,
                "status": f"updated (was {before}; sha256 verified)"}


def report(settings: ImageSettings, names: list[str] | None,
           probe: list[Path] | None = None) -> dict[str, Any]:
    """This node's stored digests and agreement (for `image list --cluster`); with probe,
    which of those paths exist here (their indexes) (sync: does this node share the master's files?)."""
    store = ImageStore(settings, Path("/nonexistent"), progress=None)
    try:
        agreed: dict[str, str] | str = {
            n: a.sha256 for n, a in agreement.load(settings.agreement_file).items()}
    except ImageError as exc:
        agreed = str(exc)
    wanted = names or sorted(set(store.cached_names())
                             | (set(agreed) if isinstance(agreed, dict) else set()))
    images: dict[str, str | None] = {}
    for name in wanted:
        art = store.artifact(name)
        images[name] = art.sha256 if art else None
    return {"node": node_name(), "images": images, "agreement": agreed,
            "agreement_file": str(settings.agreement_file),
            "present": [i for i, p in enumerate(probe or ()) if p.exists()]}


# -- master side ----------------------------------------------------------------

def node_command(os_dir: Path, *args: str) -> list[str]:
    """The argv that runs osdef's per-node tool on a node (same install path everywhere)."""
    return [sys.executable, "-m", "osdef.cli", "image", *args, "--os-dir", str(os_dir)]


class ClusterSync:
    """`osdef image sync` and `image list --cluster`, over GanetiTools."""

    def __init__(self, settings: ImageSettings, os_dir: Path, tools: GanetiTools | None = None,
                 progress: TextIO | None = sys.stderr) -> None:
        self.settings = settings
        self.os_dir = Path(os_dir)
        self.tools = tools or GanetiTools()
        self.progress = progress
        self.store = ImageStore(settings, Path("/nonexistent"), progress=None)

    def _say(self, text: str) -> None:
        if self.progress is not None:
            print(text, file=self.progress, flush=True)

    def sync(self, name: str, group: str | None = None) -> list[NodeState]:
        check_name(name)
        art = self.store.artifact(name)
        if art is None:
            raise ImageError(f"image {name} is not in this node's cache ({self.store.cache_dir}):"
                             f" build it here first with `osdef image build {name}`")
        self._say(f"image {name}: verifying the master's copy ({art.path.name})")
        if sha256_of(art.path) != art.sha256:
            raise ImageError(f"image {name}: {art.path} does not match its manifest; rebuild it "
                             f"with `osdef image build {name}` before syncing")
        cache = self.store.cache_dir
        token = secrets.token_hex(6)
        staged = cache / f".{name}.{_SYNC_TAG}{token}{cf.PARTIAL_SUFFIX}"
        staged_manifest = cache / f".{name}.{_SYNC_TAG}{token}.json{cf.PARTIAL_SUFFIX}"
        target = self.settings.agreement_file
        staged_agreement = target.parent / f".{target.name}.{_SYNC_TAG}{token}{cf.PARTIAL_SUFFIX}"
        entries = agreement.load(target)
        entries[name] = agreement.Agreed(
            name=name, sha256=art.sha256, artifact=art.path.name, master=node_name(),
            agreed_at=datetime.now(UTC).isoformat(timespec="seconds"))
        try:
            os.link(art.path, staged)
            cf.write_atomic(staged_manifest, cf.manifest_path(cache, name).read_text("utf-8"))
            agreement.save(staged_agreement, entries)
            agreement_sha = sha256_of(staged_agreement)
            self._copy_staged(name, group, art, staged, staged_manifest, staged_agreement)
            self._say(f"image {name}: gnt-cluster command … node-receive")
            outputs = self.tools.command(node_command(
                self.os_dir, "node-receive", name, "--staged", str(staged),
                "--staged-manifest", str(staged_manifest), "--sha256", art.sha256,
                "--staged-agreement", str(staged_agreement), "--agreement-sha256", agreement_sha),
                group=group)
            if node_name() not in {o.node for o in outputs}:  # a node group without the master
                problem = _install_agreement(target, staged_agreement, agreement_sha)
                if problem:
                    raise ImageError(f"image {name}: on the master: {problem}")
        finally:
            for p in (staged, staged_manifest, staged_agreement):
                cf.remove_quietly(p)
        return self._states_after(name, group, outputs)

    def _copy_staged(self, name: str, group: str | None, art: Artifact, staged: Path, staged_manifest: Path,
                     staged_agreement: Path) -> None:
        """gnt-cluster copyfile the staged image (+ manifest) and agreement to the other nodes."""
        # scp onto the file itself would truncate it: a node that already sees a
        # staged file (a dir shared with the master, e.g. on a NAS) is not copied to
        others, shared = self._targets(name, group, [staged, staged_agreement])
        for path, what in ((staged, "image"), (staged_agreement, "agreement")):
            nodes = [n for n in others if n not in shared.get(str(path), ())]
            if not nodes:
                continue
            self._say(f"image {name}: gnt-cluster copyfile of the {what} to {len(nodes)} "
                      f"node(s)" + (f" ({art.manifest.stored_size >> 20} MiB)"
                                    if what == "image" else ""))
            for p in ((staged, staged_manifest) if what == "image" else (staged_agreement,)):
                err = self.tools.copyfile(str(p), nodes=nodes)
                for line in err.strip().splitlines():
                    self._say(f"  {line}")

    def _states_after(self, name: str, group: str | None, outputs: list[NodeOutput]) -> list[NodeState]:
        """Each node's state of name now, with what its node-receive answered."""
        received = {o.node: node_json(o.output) for o in outputs}
        states = []
        for now in self.states([name], group):
            got = received.get(now.node)
            what = str(got.get("status")) if got else "no answer from node-receive"
            ok = now.status == "agreed"
            if not ok:
                what = f"{what}; now: {now.status}"
            states.append(NodeState(now.node, name, now.sha256, now.agreed, what, ok))
        return states

    def _targets(self, name: str, group: str | None,
                 probe: list[Path]) -> tuple[list[str], dict[str, list[str]]]:
        """The nodes other than the master, and per probed path the ones that see it too."""
        master = node_name()
        args = ["node-report", name]
        for p in probe:
            args += ["--probe", str(p)]
        targets: list[str] = []
        shared: dict[str, list[str]] = {}
        for out in self.tools.command(node_command(self.os_dir, *args), group=group):
            data = node_json(out.output)
            if out.node == master:
                continue
            present = data.get("present", []) if data else []
            for i, p in enumerate(probe):
                if i in present:
                    shared.setdefault(str(p), []).append(out.node)
            for i, what in enumerate(("cache", "agreement dir")):
                if i in present:
                    self._say(f"image {name}: {out.node} shares this node's {what}: not copied")
            targets.append(out.node)
        return targets, shared

    def states(self, names: list[str] | None, group: str | None = None) -> list[NodeState]:
        """Per node and image: the digest it holds against the one it agrees on."""
        outputs = self.tools.command(node_command(self.os_dir, "node-report", *(names or [])),
                                     group=group)
        states: list[NodeState] = []
        for out in outputs:
            states.extend(_node_states(out, names))
        return states


def _node_states(out: NodeOutput, names: list[str] | None) -> list[NodeState]:
    data = node_json(out.output)
    if data is None or not isinstance(data.get("images"), dict):
        last = out.output.strip().splitlines()
        why = last[-1][:200] if last else "no output"
        return [NodeState(out.node, n, None, None, f"osdef did not answer: {why}", False)
                for n in (names or ["-"])]
    agreed = data.get("agreement")
    states = []
    for name in sorted(data["images"]):
        have = data["images"][name]
        if isinstance(agreed, str):
            states.append(NodeState(out.node, name, have, None, agreed, False))
            continue
        want = (agreed or {}).get(name)
        if want is None:
            status, ok = ("no agreement (never synced)", True) if have else \
                ("not here, no agreement", True)
        elif have is None:
            status, ok = f"MISSING: run `{agreement.fix_command(name)}`", False
        elif have != want:
            status, ok = f"DIFFERS from agreed {want[:16]}: run `{agreement.fix_command(name)}`", \
                False
        else:
            status, ok = "agreed", True
        states.append(NodeState(out.node, name, have, want, status, ok))
    return states


def format_states(states: list[NodeState]) -> str:
    """The per-node table (pure)."""
    rows = [("NODE", "IMAGE", "SHA256", "STATUS")]
    for s in sorted(states, key=lambda s: (s.node, s.image)):
        rows.append((s.node, s.image, s.sha256[:16] if s.sha256 else "-", s.status))
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
                     for r in rows)
