"""The table of named, published checkpoints (``MODEL.WEIGHTS zoo://NAME``).

No checkpoint is published yet (no GPU training run exists), so :data:`MODEL_ZOO` ships empty.
``MODEL_ZOO.md`` at the repository root says how an entry is added.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

# The repository root: relative ``ZooEntry.config`` paths (``configs/dgnet_r50.yml``) are
# resolved against it.
REPO_ROOT = Path(__file__).resolve().parents[2]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_URL_PREFIXES = ("http://", "https://", "gdrive://")


class ModelZooError(UserError, RuntimeError):
    """A zoo name is unknown or malformed, or a checkpoint cannot be downloaded or verified
    (HTTP error, no network, truncated file, sha256 mismatch)."""


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint.

    Attributes:
        name: the key of ``zoo://NAME`` (letters, digits, ``_``, ``.``, ``-``).
        config: the config the checkpoint was trained with, absolute or relative to the
            repository root (``configs/dgnet_r50.yml``).
        url: where the ``.pth`` lies: ``http(s)://...``, ``gdrive://<file id>`` or a Google
            Drive link.
        sha256: the file's SHA-256 (64 hex digits); every download is checked against it.
        metrics: the reported results, e.g. ``{"dataset": "market1501", "rank1": 94.8,
            "mAP": 86.0, "mINP": 60.1}``.
        description: one line for humans (backbone, image size, iterations, ...).

    Raises:
        ModelZooError: a field is malformed (the message names the entry and the field).
    """

    name: str
    config: str
    url: str
    sha256: str
    metrics: dict = field(default_factory=dict, hash=False)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ModelZooError(
                f"model zoo entry name {self.name!r} is invalid: use letters, digits, '_', '.' "
                "and '-' (it becomes zoo://NAME)"
            )
        if not isinstance(self.url, str) or not self.url.lower().startswith(_URL_PREFIXES):
            raise ModelZooError(
                f"model zoo entry '{self.name}': url {self.url!r} must start with http://, "
                "https:// or gdrive://"
            )
        sha = self.sha256.lower() if isinstance(self.sha256, str) else self.sha256
        if not isinstance(sha, str) or not _SHA256_RE.match(sha):
            raise ModelZooError(
                f"model zoo entry '{self.name}': sha256 {self.sha256!r} is not 64 hex digits; "
                "compute it with `sha256sum FILE.pth`"
            )
        object.__setattr__(self, "sha256", sha)
        if not isinstance(self.metrics, dict):
            raise ModelZooError(
                f"model zoo entry '{self.name}': metrics must be a dict, got "
                f"{type(self.metrics).__name__}"
            )


# name -> entry. Empty on purpose: nothing has been published yet (see MODEL_ZOO.md).
MODEL_ZOO: dict[str, ZooEntry] = {}


def register_entry(entry: ZooEntry) -> ZooEntry:
    """Add ``entry`` to :data:`MODEL_ZOO` and return it.

    Registering the identical entry twice is a no-op (module reloads, repeated imports).

    Raises:
        TypeError: ``entry`` is not a :class:`ZooEntry`.
        ModelZooError: another, different entry already has this name (names are the keys of
            ``zoo://NAME`` and must mean one file).
    """
    if not isinstance(entry, ZooEntry):
        raise TypeError(f"register_entry needs a ZooEntry, got {type(entry).__name__}")
    old = MODEL_ZOO.get(entry.name)
    if old is not None and old != entry:
        raise ModelZooError(
            f"model zoo entry '{entry.name}' is already registered with another checkpoint "
            f"(url {old.url}, sha256 {old.sha256}); pick another name"
        )
    MODEL_ZOO[entry.name] = entry
    return entry


def get_entry(name: str) -> ZooEntry:
    """The entry registered as ``name`` (the part after ``zoo://``).

    Raises:
        ModelZooError: no such entry; the message lists the known names.
    """
    if name in MODEL_ZOO:
        return MODEL_ZOO[name]
    known = ", ".join(sorted(MODEL_ZOO)) or "none (no checkpoint is published yet)"
    raise ModelZooError(
        f"unknown model zoo entry '{name}'; known entries: {known}. See MODEL_ZOO.md, register "
        "one with dgnet_plugin.model_zoo.register_entry, or set MODEL.WEIGHTS to a URL or a "
        "local path"
    )


def entry_config_path(name: str) -> str:
    """The config file of entry ``name`` as an existing path (a relative ``config`` is taken
    from the current folder, then from the repository root).

    Raises:
        ModelZooError: unknown entry, or its config file exists in neither place.
    """
    entry = get_entry(name)
    candidates = [Path(entry.config)]
    if not os.path.isabs(entry.config):
        candidates.append(REPO_ROOT / entry.config)
    for path in candidates:
        if path.is_file():
            return str(path)
    raise ModelZooError(
        f"model zoo entry '{name}' names config '{entry.config}', which exists neither in the "
        f"current folder nor under {REPO_ROOT}; set MODEL.TEACHER.CONFIG to the config file"
    )
