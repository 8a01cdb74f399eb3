"""Where osdef's own data lives: the source tree's variants/, hooks/, images/."""

from __future__ import annotations

from pathlib import Path

from osdef.errors import OsdefError


def source_root() -> Path:
    """The checkout holding variants/, hooks/ and images/ (osdef is installed editable)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "variants").is_dir():
        raise OsdefError(
            f"{root}: no variants/ directory; osdef must run from its source checkout "
            "(pip install -e .), see README.md"
        )
    return root
