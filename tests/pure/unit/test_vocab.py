"""osdef.vocab: the one set of words, and the one host-name and time-zone check."""

import pytest

from osdef import vocab
from osdef.errors import GuestError
from osdef.guest.hostnames import validate_fqdn


def test_the_word_lists_nest():
    assert set(vocab.FILESYSTEMS) <= set(vocab.ROOT_FILESYSTEMS)
    assert set(vocab.EXT_FAMILY) <= set(vocab.ROOT_FILESYSTEMS)
    assert set(vocab.DIB_KINDS) <= set(vocab.IMAGE_KINDS) <= set(vocab.URL_KINDS)
    assert vocab.DEFAULT_FILESYSTEM in vocab.FILESYSTEMS
    assert vocab.DEFAULT_PARTITION_TABLE in vocab.PARTITION_TABLES
    assert vocab.DEFAULT_BOOT_MODE in vocab.BOOT_MODES


@pytest.mark.parametrize("name", ["web-1.example.org", "A", "x" * 63 + ".org", "Web.Example.ORG"])
def test_a_host_name_is_valid_for_ganeti_and_the_guest_alike(name):
    assert vocab.valid_hostname(name)
    assert validate_fqdn(name) == name.lower()


@pytest.mark.parametrize("name", ["", "-a.org", "a-.org", "a..org", "a_b.org", "x" * 64 + ".org",
                                  "a." * 127 + "a", "a b"])
def test_an_invalid_host_name_is_refused_by_both(name):
    assert not vocab.valid_hostname(name)
    with pytest.raises(GuestError):
        validate_fqdn(name)


@pytest.mark.parametrize("zone, ok", [
    ("UTC", True), ("Europe/Berlin", True), ("Etc/GMT+5", True), ("America/Argentina/Salta", True),
    ("", False), ("/etc/passwd", False), ("../x", False), ("Europe//Berlin", False),
    ("Europe/..", False), ("a" * 65, False), ("Europe/Ber lin", False),
])
def test_zone_names(zone, ok):
    assert vocab.valid_zone_name(zone) is ok
