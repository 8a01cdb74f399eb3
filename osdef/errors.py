"""Typed errors shared by every osdef module.

Each layer raises a subclass of OsdefError whose message is one line an admin
can act on (what was wrong, which value, what to do).  Only the entry points
(osdef.scripts.entry, osdef.cli) turn them into stderr output and exit codes.
"""


class OsdefError(Exception):
    """An expected failure with a one-line, admin-facing message."""

    exit_code = 1


class ConfigError(OsdefError):
    """The site configuration file is unreadable or violates its schema."""


class EnvError(OsdefError):
    """A Ganeti environment variable is missing or malformed."""


class ParamError(OsdefError):
    """An OS parameter (OSP_*) has an invalid value."""


class VariantError(OsdefError):
    """A variant is unknown or its YAML file violates the schema."""


class ImageError(OsdefError):
    """An image is missing, corrupt, or could not be built or fetched."""


class GuestError(OsdefError):
    """Work inside the libguestfs appliance failed."""


class StreamError(OsdefError):
    """An export/import stream is corrupt, truncated, foreign or unwritable."""


QUOTE_LIMIT = 100


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` for an error line: repr-quoted (newlines and control characters escaped), at most
    ``limit`` characters of it, with the full length said when it was cut."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"
