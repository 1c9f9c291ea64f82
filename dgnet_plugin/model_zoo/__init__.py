"""The model zoo: named, hash-verified checkpoints and ``MODEL.WEIGHTS`` resolution.

``MODEL.WEIGHTS`` (and ``MODEL.TEACHER.WEIGHTS``) take ``zoo://NAME``, an ``http(s)://`` URL
(optionally ``#sha256=<hex>``), ``gdrive://<file id>``, a Google Drive link, or a local path.
Downloads land in ``$DGNET_PLUGIN_CACHE`` (default ``~/.cache/dgnet_plugin``). See
``MODEL_ZOO.md`` for the published checkpoints (none yet) and how to add one.
"""

from .catalog import (
    MODEL_ZOO,
    ModelZooError,
    ZooEntry,
    entry_config_path,
    get_entry,
    register_entry,
)
from .configs import ConfigNotFoundError, get_config_file, packaged_configs, resolve_config_file
from .download import (
    CACHE_ENV,
    cache_filename,
    default_cache_dir,
    download,
    file_sha256,
    is_remote_spec,
    resolve_weights,
)

__all__ = [
    "CACHE_ENV",
    "ConfigNotFoundError",
    "get_config_file",
    "packaged_configs",
    "resolve_config_file",
    "MODEL_ZOO",
    "ModelZooError",
    "ZooEntry",
    "cache_filename",
    "default_cache_dir",
    "download",
    "entry_config_path",
    "file_sha256",
    "get_entry",
    "is_remote_spec",
    "register_entry",
    "resolve_weights",
]
