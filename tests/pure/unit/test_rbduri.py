"""Disks given as URIs (DISK_N_URI, EXPORT_DISK_URI, IMPORT_DISK_URI): parsing, refusals, choice of path or URI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from osdef.disk import rbduri
from osdef.disk.rbduri import RbdUri, UriError
from osdef.errors import EnvError, StreamError
from osdef.ganeti import environment as genv

SECRET = "AQBzPDZnAAAAABAAvq6lqeVXGmh8YmIrjmHrdw=="


@pytest.mark.parametrize("text,expected", [
    ("rbd:rbd/vol", RbdUri("rbd", "vol")),
    ("rbd:rbd/4ef8c04c-96e9-4ed5-9fc7-8759868a8946.ext.disk0",
     RbdUri("rbd", "4ef8c04c-96e9-4ed5-9fc7-8759868a8946.ext.disk0")),
    ("rbd:pool/vol:id=ganeti", RbdUri("pool", "vol", user="ganeti")),
    ("rbd:pool/vol:id=client.ganeti", RbdUri("pool", "vol", user="ganeti")),
    ("rbd:pool/ns/vol@snap:conf=/etc/ceph/ceph.conf:id=u",
     RbdUri("pool", "vol", namespace="ns", snapshot="snap", user="u", conf="/etc/ceph/ceph.conf")),
])
def test_parses_the_uris_ganeti_and_qemu_write(text, expected):
    assert rbduri.parse(text) == expected


@pytest.mark.parametrize("uri", [RbdUri("p", "v"), RbdUri("p", "v", "ns", "s", "u", "/etc/ceph/x.conf"),
                                 RbdUri("p", "v", user="admin", conf="/var/tmp/a.b/ceph.conf")])
def test_canonical_form_round_trips_also_through_path(uri):
    text = str(uri)
    assert rbduri.parse(text) == uri
    assert str(rbduri.as_location(text)) == text and isinstance(rbduri.as_location(text), str)
    assert isinstance(rbduri.as_location("/dev/loop0"), Path)


@pytest.mark.parametrize("text,words", [
    ("gluster://host/volume/image", "libguestfs 1.54 removed gluster"),
    ("gluster+tcp://host/v/i", "GlusterFS"),
    ("nbd:host:10809", "'nbd' URI"),
    ("rbd:", "must be rbd:<pool>/<image>"),
    ("rbd:pool", "must be rbd:<pool>/<image>"),
    ("rbd:pool/", "image '' is not a valid name"),
    ("rbd:/image", "pool '' is not a valid name"),
    ("rbd:a/b/c/d", "must be rbd:<pool>/<image>"),
    ("rbd:pool/img@", "must be rbd:<pool>/<image>"),
    ("rbd:pool/img:mon_host=1.2.3.4", "option 'mon_host' is not supported"),
    ("rbd:pool/img:id", "has no value"),
    ("rbd:pool/img:id=a:id=b", "given twice"),
    ("rbd:pool/img:conf=relative.conf", "not an absolute path"),
    ("rbd:pool/i\\:mg", "backslash"),
    ("rbd:pool/img\n", "control character"),
])
def test_refuses_bad_uris_in_one_line(text, words):
    with pytest.raises(UriError) as exc:
        rbduri.parse(text, "DISK_0_URI")
    message = str(exc.value)
    assert words in message and "\n" not in message and message.startswith("DISK_0_URI")


@pytest.mark.parametrize("option", ["key", "keyfile", "password-secret", "secret"])
def test_a_key_in_the_uri_is_refused_and_never_repeated(option):
    with pytest.raises(UriError) as exc:
        rbduri.parse(f"rbd:pool/img:{option}={SECRET}", "DISK_0_URI")
    assert "cephx secret" in str(exc.value) and SECRET not in str(exc.value)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80).map(lambda t: "rbd:" + t)
       | st.text(max_size=40))
def test_hostile_uris_parse_or_give_one_line(text):
    try:
        uri = rbduri.parse(text)
    except UriError as exc:
        assert "\n" not in str(exc)
        return
    assert rbduri.parse(str(uri)) == uri  # what is accepted renders canonically


def test_disk_location_path_default_uri_when_alone_or_preferred():
    both = genv.Disk(0, "/dev/rbd0", uri="rbd:rbd/vol")
    assert both.location() == "/dev/rbd0" and both.location_key() == "DISK_0_PATH"
    assert both.location(prefer_uri=True) == "rbd:rbd/vol" and both.location_key(True) == "DISK_0_URI"
    assert genv.Disk(1, None, uri="rbd:rbd/v1").location() == "rbd:rbd/v1"


def _env(**disks):
    env = {"OS_API_VERSION": "20", "INSTANCE_NAME": "a.example.org", "DISK_COUNT": "1", "NIC_COUNT": "0"}
    env.update(disks)
    return env


def test_environment_accepts_uri_only_disks_and_targets():
    inst = genv.load_instance(_env(DISK_0_URI="rbd:rbd/vol", DISK_0_SIZE="64"), "create")
    assert inst.disks[0].path is None and inst.disks[0].location() == "rbd:rbd/vol"
    target = genv.load_export_target({"EXPORT_DISK_URI": "rbd:rbd/vol@s", "EXPORT_INDEX": "0"})
    assert target.device is None and target.location() == "rbd:rbd/vol@s"
    assert target.location_key() == "EXPORT_DISK_URI"
    target = genv.load_import_target({"IMPORT_DEVICE": "/dev/x", "IMPORT_DISK_URI": "rbd:rbd/v", "IMPORT_INDEX": "0"})
    assert target.location() == "/dev/x" and target.location(prefer_uri=True) == "rbd:rbd/v"


@pytest.mark.parametrize("env,message", [
    (_env(), "DISK_COUNT=1 but DISK_0_PATH is not set (nor DISK_0_URI)"),
    (_env(DISK_0_URI="rbd:rbd/v\n"), "DISK_0_URI contains a control character"),
])
def test_environment_refuses_missing_or_broken_uris(env, message):
    with pytest.raises(EnvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        genv.load_instance(env, "create")
    with pytest.raises(EnvError, match="EXPORT_DEVICE is not set"):
        genv.load_export_target({"EXPORT_INDEX": "0"})


def test_without_python3_rbd_one_line_names_the_packages(monkeypatch):
    from osdef.disk import device

    monkeypatch.setitem(sys.modules, "rbd", None)  # `import rbd` raises ImportError
    monkeypatch.setitem(sys.modules, "rados", None)
    with pytest.raises(StreamError) as exc:
        device.open_disk("rbd:rbd/vol", write=False, error=StreamError)
    assert str(exc.value) == ("this disk is an RBD image but python3-rbd is not installed here: "
                              "apt-get install python3-rbd python3-rados")


def test_site_config_ceph_section(tmp_path):
    from osdef import config
    from osdef.errors import ConfigError

    path = tmp_path / "osdef.yaml"
    path.write_text("ceph:\n  conf: /srv/ceph/c.conf\n  user: ganeti\n  connect_timeout: 5\n  prefer_uri: true\n")
    ceph = config.load_file(path).ceph
    assert (str(ceph.conf), ceph.user, ceph.connect_timeout, ceph.prefer_uri) == ("/srv/ceph/c.conf", "ganeti", 5, True)
    assert config.SiteConfig().ceph.conf == Path("/etc/ceph/ceph.conf") and not config.SiteConfig().ceph.prefer_uri
    for bad, words in (("user: client.admin", "without 'client.'"), ("connect_timeout: 0", "integer >= 1"),
                       ("keyring: /x", "unknown key ceph.keyring")):
        path.write_text(f"ceph:\n  {bad}\n")
        with pytest.raises(ConfigError, match=words):
            config.load_file(path)
