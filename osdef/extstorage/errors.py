"""Typed errors of the ExtStorage provider; each message is one admin-facing line.

A loop device that cannot be attached, listed, resized or detached raises
osdef.disk.loop.LoopError, an OsdefError too: the same one line.
"""

from osdef.errors import OsdefError


class ExtStorageError(OsdefError):
    """An ExtStorage action failed."""


class VolumeError(ExtStorageError):
    """The volume Ganeti named is missing, already present or malformed."""


class RequestError(ExtStorageError):
    """A variable Ganeti should have set (VOL_*, EXTP_*) is missing or malformed."""


class ProviderConfigError(ExtStorageError):
    """The provider's config file is unreadable or invalid."""
