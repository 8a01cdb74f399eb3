"""OS parameter declarations: parsing, verify messages, parameters.list."""

import pytest

from osdef.errors import ParamError
from osdef.ganeti import params as p

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDzVXq3nnp7+6RkWTrCtRvqOa2mELHO7hlm4JF1B3aGO admin@example"
SHA512 = "$6$saltsalt$" + "a" * 86
YESCRYPT = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"


def test_required_parameters_declared():
    names = {x.name for x in p.PARAMETERS}
    assert names >= {"root_password_hash", "ssh_authorized_keys", "dns_servers", "dns_search", "timezone",
                     "serial_console", "filesystem", "partition_table", "swap_size", "data_disks", "network",
                     "cloud_init", "keep_ssh_host_keys", "export_format", "export_compression"}


def test_parameters_list_has_no_blank_or_comment_lines():
    text = p.parameters_list()
    lines = text.split("\n")
    assert lines[-1] == ""  # ends with a newline
    for line in lines[:-1]:
        assert line.strip() and not line.startswith("#")
        name, desc = line.split(" ", 1)
        assert name in p.BY_NAME and desc.strip()
    assert len(lines) - 1 == len(p.PARAMETERS)


def test_defaults_all_valid():
    values = p.resolve({})
    assert values["network"] == "auto" and values["swap_size"] == 0
    assert values["keep_ssh_host_keys"] is True and values["export_format"] == "sparse"
    assert values == p.OsParams.defaults() and values.swap_size == 0 and values.network == "auto"


def test_typed_params_are_the_table_once():
    import dataclasses

    assert [f.name for f in dataclasses.fields(p.OsParams)] == [x.name for x in p.PARAMETERS]
    values = p.resolve({"root_password_hash": SHA512, "ssh_authorized_keys": ED25519 + "|" + ED25519})
    assert values.ssh_authorized_keys == (ED25519, ED25519) and dict(values)["root_password_hash"] == SHA512
    assert SHA512 not in repr(values)  # the secret stays out of logs and tracebacks
    with pytest.raises(dataclasses.FrozenInstanceError):
        values.swap_size = 1  # type: ignore[misc]
    assert p.OsParams.of(swap_size=1 << 20).swap_size == 1 << 20
    with pytest.raises(KeyError):
        values["nope"]


@pytest.mark.parametrize("name, raw, parsed", [
    ("swap_size", "512M", 512 << 20), ("swap_size", "2G", 2 << 30), ("swap_size", "100", 100 << 20),
    ("swap_size", "0", 0), ("network", "DHCP", "dhcp"), ("keep_ssh_host_keys", "no", False),
    ("dns_servers", "192.0.2.53 2001:db8::53", ("192.0.2.53", "2001:db8::53")),
    ("dns_servers", "192.0.2.53;192.0.2.54", ("192.0.2.53", "192.0.2.54")),
    ("dns_search", "example.org corp.example.org", ("example.org", "corp.example.org")),
    ("timezone", "Europe/Berlin", "Europe/Berlin"), ("timezone", "UTC", "UTC"),
    ("ssh_authorized_keys", ED25519 + "|" + ED25519, (ED25519, ED25519)),
    ("root_password_hash", SHA512, SHA512), ("root_password_hash", YESCRYPT, YESCRYPT),
    ("partition_table", "msdos", "msdos"), ("filesystem", "", ""),
])
def test_good_values(name, raw, parsed):
    assert p.BY_NAME[name].parse(raw) == parsed


@pytest.mark.parametrize("name, raw, needle", [
    ("network", "bogus", "allowed: auto, static, dhcp, none"),
    ("swap_size", "lots", "a size such as"),
    ("dns_servers", "192.0.2.300", "is not an IPv4 or IPv6 address"),
    ("dns_search", "bad_domain", "is not a domain name"),
    ("timezone", "Mars/Olympus", "unknown time zone"),
    ("timezone", "../../etc/passwd", "tz database name"),
    ("ssh_authorized_keys", "ssh-ed25519 !!!notbase64", "base64 part is corrupt"),
    ("ssh_authorized_keys", "ssh-foo AAAA", "must look like"),
    ("ssh_authorized_keys", "ssh-rsa " + ED25519.split()[1], "does not match its type"),
    ("keep_ssh_host_keys", "perhaps", "yes or no"),
    ("export_compression", "gzip", "allowed: none, zstd"),
])
def test_bad_values(name, raw, needle):
    problems = p.check({name: raw})
    assert len(problems) == 1
    assert needle in problems[0].message
    assert problems[0].message.startswith(f"{name}=")


@pytest.mark.parametrize("raw", ["secretsecret", "$1$abc$0123456789012345678901", "$6$short$abc", "$6$" + "x" * 200])
def test_secret_value_never_echoed(raw):
    [problem] = p.check({"root_password_hash": raw})
    assert raw not in problem.message
    assert "value hidden" in problem.message and "mkpasswd" in problem.message


def test_unknown_parameter_reported():
    [problem] = p.check({"colour": "blue"})
    assert "unknown OS parameter" in problem.message


def test_precedence_given_variant_site_declared():
    merged = p.merge({"network": "dhcp"}, variant_defaults={"network": "none", "swap_size": "1G"},
                     site_defaults={"swap_size": "2G", "timezone": "UTC"})
    assert merged.values["network"] == "dhcp"
    assert merged.values["swap_size"] == "1G"
    assert merged.values["timezone"] == "UTC"
    assert merged.values["data_disks"] == "keep"


def test_bad_site_default_names_its_origin():
    with pytest.raises(ParamError, match=r"network \(default in /etc/osdef/osdef.yaml\)='x'"):
        p.resolve({}, site_defaults={"network": "x"}, site_source="/etc/osdef/osdef.yaml")


def test_markdown_table_covers_every_parameter():
    table = p.markdown_table()
    for x in p.PARAMETERS:
        assert f"| `{x.name}` |" in table
    # every row has the same number of cells (no stray unescaped pipes)
    rows = [r for r in table.splitlines() if r]
    counts = {r.replace("\\|", "").count("|") for r in rows}
    assert counts == {5}
