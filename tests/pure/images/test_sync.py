"""`osdef image sync` / `list --cluster` / the agreement, against simulated nodes.

Only the Ganeti boundary is faked: `FakeGaneti` stands in for the two
`gnt-cluster` commands (copyfile = copy to the same path on the other nodes,
command = run the osdef command line on each node, printed the way
gnt-cluster prints it).  Each node is a directory with its own cache and
agreement file; paths under the master's directory map to the same paths
under each node's.  The real two-node run is in tests/cluster/ganeti/.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from osdef import cli
from osdef.config import ImageSettings
from osdef.errors import ImageError
from osdef.images import ImageStore, agreement, sync
from osdef.images.cluster import GanetiTools, SEPARATOR, parse_command_output

from tests.support.images import make_tar

NODES = ("node1.example.test", "node2.example.test", "node3.example.test")


class FakeGaneti:
    """gnt-cluster copyfile/command over node directories (node1 is the master)."""

    def __init__(self, root: Path, monkeypatch, nodes=NODES, groups=None) -> None:
        self.root = root
        self.nodes = list(nodes)
        self.groups = groups or {n: "default" for n in nodes}
        self.monkeypatch = monkeypatch
        self.calls: list[list[str]] = []
        self.broken_copy: set[str] = set()  # nodes whose scp "fails"
        for n in self.nodes:
            d = self.dir(n)
            (d / "etc").mkdir(parents=True, exist_ok=True)
            (d / "etc" / "osdef.yaml").write_text(
                f"images:\n  cache_dir: {self.same(d, 'cache')}\n"
                f"  agreement_file: {self.same(d, 'etc/agreed.json')}\n")

    def dir(self, node: str) -> Path:
        return self.root / node.split(".")[0]

    @staticmethod
    def same(d: Path, rel: str) -> Path:
        return d / rel

    def settings(self, node: str) -> ImageSettings:
        d = self.dir(node)
        return ImageSettings(cache_dir=d / "cache", agreement_file=d / "etc" / "agreed.json")

    def on(self, node: str, path: str) -> Path:
        """The same path as on the master, on node."""
        master = str(self.dir(self.nodes[0]))
        assert path.startswith(master + "/"), path
        return Path(str(self.dir(node)) + path[len(master):])

    def _selected(self, args: list[str]) -> tuple[list[str], list[str]]:
        chosen, group, rest = [], None, []
        it = iter(args)
        for a in it:
            if a == "-n":
                chosen.append(next(it))
            elif a == "-g":
                group = next(it)
            else:
                rest.append(a)
        nodes = chosen or [n for n in self.nodes if group is None or self.groups[n] == group]
        return nodes, rest

    def __call__(self, argv, capture_output=True, text=True, timeout=None):
        self.calls.append(list(argv))
        assert argv[0] == "gnt-cluster"
        nodes, rest = self._selected(argv[2:])
        if argv[1] == "copyfile":
            (path,) = rest
            err = ""
            for n in nodes:
                if n == self.nodes[0]:
                    continue  # copyfile skips the master
                if n in self.broken_copy:
                    err += f"Copy of file {path} to node {n}:22 failed\n"
                    continue
                dest = self.on(n, path)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
            return subprocess.CompletedProcess(argv, 0, "", err)
        if argv[1] == "command":
            (cmd,) = rest
            out = []
            for n in [x for x in nodes if x != self.nodes[0]] + \
                     [x for x in nodes if x == self.nodes[0]]:
                words = shlex.split(cmd)
                assert words[1:3] == ["-m", "osdef.cli"], words
                master = str(self.dir(self.nodes[0]))
                words = [w.replace(master, str(self.dir(n))) for w in words[3:]]
                os_dir = self.dir(n) / "etc"
                words[words.index("--os-dir") + 1] = str(os_dir)
                self.monkeypatch.setattr(sync, "node_name", lambda n=n: n)
                buf, errbuf = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(errbuf):
                    rc = cli.main(words)
                out += [SEPARATOR, f"node: {n}", buf.getvalue() + errbuf.getvalue(),
                        f"return code = {rc}"]
            self.monkeypatch.setattr(sync, "node_name", lambda: self.nodes[0])
            return subprocess.CompletedProcess(argv, 0, "\n".join(out) + "\n", "")
        raise AssertionError(argv)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.delenv("OSDEF_CONFIG", raising=False)
    f = FakeGaneti(tmp_path / "nodes", monkeypatch)
    monkeypatch.setattr(sync, "node_name", lambda: NODES[0])
    monkeypatch.setattr(sync, "GanetiTools", lambda: GanetiTools(runner=f))
    return f


def add_image(fake, node, name, tmp_path, content="one") -> str:
    tar = make_tar(tmp_path / f"{node}-{name}-{content}.tar")
    if content != "one":  # one byte of the image differs
        data = bytearray(tar.read_bytes())
        data[-1] ^= 1
        tar.write_bytes(bytes(data))
    store = ImageStore(fake.settings(node), tmp_path / "recipes", progress=None)
    return store.add(name, tar).sha256


def master_cli(fake, *argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["image", *argv, "--os-dir", str(fake.dir(NODES[0]) / "etc")])
    return rc, out.getvalue(), err.getvalue()


def test_parse_command_output():
    text = "\n".join([SEPARATOR, "node: a.example", "line 1", "", "line 2", "return code = 0",
                      SEPARATOR, "node: b.example", "ssh: connect failed", "return code = 255",
                      ""])
    a, b = parse_command_output(text)
    assert (a.node, a.output, a.return_code) == ("a.example", "line 1\n\nline 2", 0)
    assert (b.node, b.return_code) == ("b.example", 255)
    assert parse_command_output("garbage\n") == []


def test_sync_copies_verifies_and_agrees(fake, tmp_path):
    sha = add_image(fake, NODES[0], "img", tmp_path)
    rc, out, err = master_cli(fake, "sync", "img")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NODE", "IMAGE", "SHA256", "STATUS"]
    assert {ln.split()[0] for ln in lines[1:]} == set(NODES)
    for n in NODES:
        art = ImageStore(fake.settings(n), tmp_path, progress=None).artifact("img")
        assert art is not None and art.sha256 == sync.sha256_of(art.path) == sha
        assert agreement.load(fake.settings(n).agreement_file)["img"].sha256 == sha
        # the agreement is the same bytes everywhere (gnt-cluster copyfile of the master's)
        assert fake.settings(n).agreement_file.read_bytes() == \
            fake.settings(NODES[0]).agreement_file.read_bytes()
        assert not list(fake.settings(n).cache_dir.glob(".*partial")), "staging left behind"
    assert "updated (was none" in out and "already current" in out
    rc, out, _ = master_cli(fake, "list", "--cluster")
    assert rc == 0
    assert sum("agreed" in ln and sha[:16] in ln for ln in out.splitlines()) == 3


def test_drift_is_shown_refused_and_repaired(fake, tmp_path):
    sha = add_image(fake, NODES[0], "img", tmp_path)
    assert master_cli(fake, "sync", "img")[0] == 0
    # node2's image changes: one byte of the image differs, re-registered
    other = add_image(fake, NODES[1], "img", tmp_path, content="two")
    assert other != sha
    rc, out, _ = master_cli(fake, "list", "--cluster")
    assert rc == 1
    row = next(ln for ln in out.splitlines() if ln.startswith(NODES[1]))
    assert other[:16] in row and "DIFFERS" in row and "osdef image sync img" in row
    entries = agreement.load(fake.settings(NODES[1]).agreement_file)
    with pytest.raises(ImageError) as exc:
        agreement.check(entries, "img", other, NODES[1])
    msg = str(exc.value)
    assert NODES[1] in msg and "img" in msg and sha in msg and other in msg
    assert "osdef image sync img" in msg
    # node3 loses it
    (fake.settings(NODES[2]).cache_dir / "img.json").unlink()
    rc, out, _ = master_cli(fake, "list", "--cluster")
    assert "MISSING" in next(ln for ln in out.splitlines() if ln.startswith(NODES[2]))
    rc, out, err = master_cli(fake, "sync", "img")
    assert rc == 0, err
    for n in NODES:
        art = ImageStore(fake.settings(n), tmp_path, progress=None).artifact("img")
        assert art.sha256 == sha
    assert master_cli(fake, "list", "--cluster")[0] == 0


def test_second_sync_updates_every_agreement(fake, tmp_path):
    """Every node already has an agreement file at the same path: it is still replaced."""
    add_image(fake, NODES[0], "img", tmp_path)
    assert master_cli(fake, "sync", "img")[0] == 0
    sha2 = add_image(fake, NODES[0], "other", tmp_path, content="two")
    rc, out, err = master_cli(fake, "sync", "other")
    assert rc == 0, out + err
    for n in NODES:
        entries = agreement.load(fake.settings(n).agreement_file)
        assert set(entries) == {"img", "other"} and entries["other"].sha256 == sha2
        assert not list((fake.dir(n) / "etc").glob(".*partial"))


def test_sync_reports_a_failed_copy_per_node(fake, tmp_path):
    add_image(fake, NODES[0], "img", tmp_path)
    fake.broken_copy.add(NODES[2])
    rc, out, err = master_cli(fake, "sync", "img")
    assert rc == 1
    row = next(ln for ln in out.splitlines() if ln.startswith(NODES[2]))
    assert "did not arrive" in row and "not here" in row
    assert NODES[2] in err.splitlines()[-1] and "Traceback" not in err
    assert "updated" in next(ln for ln in out.splitlines() if ln.startswith(NODES[1]))


def test_sync_node_group(tmp_path, monkeypatch):
    monkeypatch.delenv("OSDEF_CONFIG", raising=False)
    f = FakeGaneti(tmp_path / "nodes", monkeypatch,
                   groups={NODES[0]: "g1", NODES[1]: "g1", NODES[2]: "g2"})
    monkeypatch.setattr(sync, "node_name", lambda: NODES[0])
    monkeypatch.setattr(sync, "GanetiTools", lambda: GanetiTools(runner=f))
    add_image(f, NODES[0], "img", tmp_path)
    rc, out, _ = master_cli(f, "sync", "img", "--node-group", "g1")
    assert rc == 0
    assert NODES[2] not in out
    assert ImageStore(f.settings(NODES[2]), tmp_path, progress=None).artifact("img") is None
    for c in f.calls:
        if c[1] == "command":
            assert c[2:4] == ["-g", "g1"]
        else:
            assert c[2:4] == ["-n", NODES[1]] and NODES[2] not in c


def test_sync_of_a_group_without_the_master_records_the_agreement_there_too(tmp_path, monkeypatch):
    monkeypatch.delenv("OSDEF_CONFIG", raising=False)
    f = FakeGaneti(tmp_path / "nodes", monkeypatch,
                   groups={NODES[0]: "g1", NODES[1]: "g1", NODES[2]: "g2"})
    monkeypatch.setattr(sync, "node_name", lambda: NODES[0])
    monkeypatch.setattr(sync, "GanetiTools", lambda: GanetiTools(runner=f))
    sha = add_image(f, NODES[0], "img", tmp_path)
    rc, out, err = master_cli(f, "sync", "img", "-g", "g2")
    assert rc == 0, out + err
    assert [ln.split()[0] for ln in out.splitlines()[1:]] == [NODES[2]]
    for n in (NODES[0], NODES[2]):
        assert agreement.load(f.settings(n).agreement_file)["img"].sha256 == sha
    assert agreement.load(f.settings(NODES[1]).agreement_file) == {}


def test_a_cache_shared_with_the_master_is_not_copied_onto_itself(fake, tmp_path):
    """scp of a file onto itself truncates it: a node seeing the staged file is skipped."""
    shutil.rmtree(fake.dir(NODES[1]) / "cache", ignore_errors=True)
    sha = add_image(fake, NODES[0], "img", tmp_path)
    (fake.dir(NODES[1]) / "cache").symlink_to(fake.dir(NODES[0]) / "cache")
    rc, out, err = master_cli(fake, "sync", "img")
    assert rc == 0, err
    assert f"{NODES[1]} shares this node's cache: not copied" in err
    art = ImageStore(fake.settings(NODES[0]), tmp_path, progress=None).artifact("img")
    assert sync.sha256_of(art.path) == sha
    copies = [c for c in fake.calls if c[1] == "copyfile" and "/cache/" in c[-1]]
    assert copies and all(NODES[1] not in c for c in copies)


def test_sync_without_image_is_one_line(fake, tmp_path):
    rc, out, err = master_cli(fake, "sync", "nothere")
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and "osdef image build nothere" in err


def test_gnt_cluster_missing_is_one_line(tmp_path):
    tools = GanetiTools(gnt_cluster=str(tmp_path / "no-gnt-cluster"))
    with pytest.raises(ImageError, match="run this on the Ganeti master"):
        tools.command(["true"])


def test_damaged_copy_leaves_cache(fake, tmp_path):
    sha = add_image(fake, NODES[0], "img", tmp_path)
    settings = fake.settings(NODES[1])
    staged = tmp_path / "staged"
    staged.write_bytes(b"not the image")
    manifest = tmp_path / "staged.json"
    manifest.write_text((fake.settings(NODES[0]).cache_dir / "img.json").read_text())
    result = sync.receive(settings, "img", staged, manifest, sha)
    assert result["ok"] is False and "damaged" in result["status"]
    assert ImageStore(settings, tmp_path, progress=None).artifact("img") is None


@pytest.mark.parametrize("text", ["", "{", "[]", '{"version": 1, "images": {"x": 1}}',
                                  '{"version": 1, "images": {"../x": {}}}',
                                  '{"version": 2, "images": {}}',
                                  '{"version": 1, "images": {"x": {"sha256": "zz", "artifact": '
                                  '"a", "agreed_at": "t", "master": "m"}}}'])
def test_bad_agreement_file_is_one_line(tmp_path, text):
    p = tmp_path / "agreed.json"
    p.write_text(text)
    with pytest.raises(ImageError) as exc:
        agreement.load(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_agreement_roundtrip_and_absent(tmp_path):
    assert agreement.load(tmp_path / "none.json") == {}
    a = agreement.Agreed("img", "a" * 64, "img.aaaaaaaaaaaaaaaa.zst", "2026-12-01T00:00:00+00:00",
                         "node1")
    agreement.save(tmp_path / "d" / "agreed.json", {"img": a})
    assert agreement.load(tmp_path / "d" / "agreed.json") == {"img": a}
    agreement.check({"img": a}, "other", None, "node2")  # nothing agreed for it: fine
    with pytest.raises(ImageError, match="node node2 lacks image img"):
        agreement.check({"img": a}, "img", None, "node2")
