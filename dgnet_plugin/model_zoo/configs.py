"""The configs shipped inside the package (detectron2's ``model_zoo.get_config_file``).

Every file of the repository's ``configs/`` travels in the wheel as ``dgnet_plugin/configs/``
(in a clone, ``dgnet_plugin/configs`` is a link to ``configs/``: one set of files), so an
installed package trains ``dgnet-train --config-file dgnet_cuhk03_cpu_demo.yml`` with no
clone at hand. A packaged config's ``_BASE_`` is relative to its own folder, so it resolves
inside the package too.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

#: the folder of the packaged configs
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class ConfigNotFoundError(ConfigError):
    """A config name is neither an existing file nor a packaged config."""


def packaged_configs() -> list[str]:
    """The names of the packaged config files (``dgnet_r50.yml``, ...), sorted."""
    return sorted(p.name for p in CONFIG_DIR.glob("*.yml"))


def get_config_file(name: str) -> str:
    """The path of the packaged config ``name``: ``"dgnet_r50.yml"``, ``"dgnet_r50"`` or
    ``"configs/dgnet_r50.yml"`` (the repository-relative form of the README's commands).

    Raises:
        ConfigNotFoundError: no packaged config of that name; the message lists them.
    """
    stem = Path(name).name
    for candidate in (stem, f"{stem}.yml"):
        path = CONFIG_DIR / candidate
        if path.is_file():
            return str(path)
    raise ConfigNotFoundError(
        f"config file '{name}' does not exist and is not a packaged config; pass an existing "
        "YAML file to --config-file or one of the packaged configs: "
        f"{', '.join(packaged_configs()) or '(none: the package was installed without them)'}"
    )


def resolve_config_file(path: str) -> str:
    """``path`` if it is an existing file, else the packaged config of that name
    (:func:`get_config_file`). Raises ``ConfigNotFoundError`` when it is neither."""
    if Path(path).is_file():
        return path
    return get_config_file(path)
