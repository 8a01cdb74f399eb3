"""The `rbd` provider's placement: EXTP_* over extstorage.yaml over the defaults; the URI attach prints."""

from __future__ import annotations

import pytest

from osdef.extstorage.errors import ProviderConfigError, RequestError
from osdef.extstorage.rbd import config
from osdef.extstorage.rbd import install as rbdinstall


def test_parameters_over_settings_over_defaults(tmp_path):
    assert config.defaults(tmp_path) == config.Placement()
    (tmp_path / "extstorage.yaml").write_text("pool: ganeti\nuser: ganeti\nconf: /etc/ceph/c2.conf\nconnect_timeout: 5\n")
    base = config.defaults(tmp_path)
    assert (base.pool, base.user, base.conf, base.connect_timeout) == ("ganeti", "ganeti", "/etc/ceph/c2.conf", 5)
    where = config.placement({"pool": "fast", "access": "userspace", "provider": "rbd"}, base)
    assert (where.pool, where.user, where.conf) == ("fast", "ganeti", "/etc/ceph/c2.conf")


def test_the_uri_names_id_and_conf_only_when_set():
    assert str(config.Placement().uri("v.ext.disk0")) == "rbd:rbd/v.ext.disk0"
    assert str(config.Placement(user="g", conf="/x/ceph.conf").uri("v", "v.snap")) == "rbd:rbd/v@v.snap:id=g:conf=/x/ceph.conf"


@pytest.mark.parametrize("params,words", [
    ({"pool": "a/b"}, "EXTP_POOL='a/b' is not a pool name"),
    ({"user": "client.x y"}, "EXTP_USER='client.x y' is not a cephx user name"),
    ({"conf": "etc/ceph.conf"}, "EXTP_CONF='etc/ceph.conf' is not an absolute path"),
    ({"tier": "fast"}, "unknown parameter tier for the rbd provider"),
])
def test_bad_parameters_are_one_line(params, words):
    with pytest.raises(RequestError, match=words.replace(".", r"\.").replace("(", r"\(")):
        config.placement(params, config.Placement())


@pytest.mark.parametrize("text,words", [("pool: [a]\n", "pool"), ("connect_timeout: 0\n", "connect_timeout"),
                                        ("data_dir: /x\n", "unknown key data_dir")])
def test_bad_settings_name_the_file(tmp_path, text, words):
    (tmp_path / "extstorage.yaml").write_text(text)
    with pytest.raises(ProviderConfigError, match=words):
        config.defaults(tmp_path)


def test_install_writes_a_healthy_provider_dir(tmp_path):
    report = rbdinstall.install(tmp_path / "rbd", defaults=config.Placement(pool="ganeti", user="ganeti"))
    assert rbdinstall.diagnose(report.provider_dir) == []
    assert config.defaults(report.provider_dir).pool == "ganeti"
    assert "osdef.extstorage.rbd.entry" in (report.provider_dir / "attach").read_text()
