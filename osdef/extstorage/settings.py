"""The provider's config file: where the volumes' backing files live.

``osdef install-extstorage --data-dir DIR`` writes ``extstorage.yaml`` into
the provider dir; without the file the data dir is /srv/ganeti/extstorage-data.
Keys: ``data_dir`` (absolute path).  Unknown keys are an error naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from osdef.extstorage.errors import ProviderConfigError

CONFIG_NAME = "extstorage.yaml"
DEFAULT_DATA_DIR = Path("/srv/ganeti/extstorage-data")
KEYS = ("data_dir",)


@dataclass(frozen=True)
class ProviderSettings:
    data_dir: Path = DEFAULT_DATA_DIR
    source: Path | None = None  # the config file, None = built-in defaults


def render(settings: ProviderSettings) -> str:
    """The config file text for these settings."""
    return ("# osdef ExtStorage provider `loopfile`; written by osdef install-extstorage\n"
            f"data_dir: {settings.data_dir}\n")


def mapping(text: str, path: Path, keys: tuple[str, ...]) -> dict[str, object]:
    """The YAML mapping in a provider's config file, with only ``keys`` allowed (any provider)."""
    import yaml  # late: attach runs often and most calls only need the default path

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ProviderConfigError(f"{path}: not valid YAML; re-run osdef install-extstorage") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProviderConfigError(f"{path}: must be a mapping with the keys {', '.join(keys)}")
    unknown = sorted(set(map(str, data)) - set(keys))
    if unknown:
        raise ProviderConfigError(f"{path}: unknown key {unknown[0]} (allowed: {', '.join(keys)})")
    return data


def read(provider_dir: Path) -> tuple[str, Path] | None:
    """(text, path) of the provider dir's config file; None when there is none."""
    path = Path(provider_dir) / CONFIG_NAME
    try:
        return path.read_text(encoding="utf-8"), path
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProviderConfigError(f"{path}: cannot read: {exc.strerror}") from None


def parse(text: str, path: Path) -> ProviderSettings:
    data = mapping(text, path, KEYS)
    data_dir = data.get("data_dir", str(DEFAULT_DATA_DIR))
    if not isinstance(data_dir, str) or not data_dir.startswith("/"):
        raise ProviderConfigError(f"{path}: data_dir must be an absolute path, got {data_dir!r}")
    return ProviderSettings(Path(data_dir), Path(path))


def load(provider_dir: Path) -> ProviderSettings:
    found = read(provider_dir)
    return parse(*found) if found else ProviderSettings()
