"""Fetch checkpoints into a local cache: gdown for the transfer, sha256 and size checks, an
atomic rename into place, and one clear :class:`ModelZooError` for every failure.

``gdown`` (and ``requests``, which it uses) are imported when a download starts, so that
``import dgnet_plugin`` stays light.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import shutil
import tempfile
import urllib.parse

from .catalog import ModelZooError, get_entry

logger = logging.getLogger("dgnet_plugin")

CACHE_ENV = "DGNET_PLUGIN_CACHE"
DEFAULT_CACHE = "~/.cache/dgnet_plugin"
# Seconds gdown waits for the server (connect, then between bytes) before giving up.
TIMEOUT_S = 60.0

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_GDRIVE_ID_RE = re.compile(r"^[-\w]+$")
_GDRIVE_HOSTS = ("drive.google.com", "docs.google.com")
_REMOTE_PREFIXES = ("zoo://", "http://", "https://", "gdrive://")
ACCEPTED_FORMS = (
    "a local .pth path, zoo://NAME (see MODEL_ZOO.md), an http(s):// URL (optionally ending "
    "in #sha256=<64 hex digits>), gdrive://<file id> or a Google Drive link"
)


def default_cache_dir() -> str:
    """The download cache: ``$DGNET_PLUGIN_CACHE`` when set, else ``~/.cache/dgnet_plugin``
    (absolute, not created here)."""
    return os.path.abspath(os.path.expanduser(os.environ.get(CACHE_ENV) or DEFAULT_CACHE))


def is_remote_spec(spec: str) -> bool:
    """True when ``spec`` is ``zoo://``, ``http(s)://`` or ``gdrive://`` (i.e. something
    :func:`resolve_weights` downloads) rather than a local path."""
    return isinstance(spec, str) and spec.lower().startswith(_REMOTE_PREFIXES)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of the file at ``path`` (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_sha256(value: str, where: str) -> str:
    sha = value.strip().lower()
    if not _SHA256_RE.match(sha):
        raise ModelZooError(
            f"{where}: sha256 {value!r} is not 64 hex digits; compute it with `sha256sum FILE`"
        )
    return sha


def _split_fragment(url: str) -> tuple[str, str | None]:
    """``(url without its fragment, sha256 from '#sha256=<hex>' or None)``."""
    parts = urllib.parse.urlsplit(url)
    if not parts.fragment:
        return url, None
    bare = urllib.parse.urlunsplit(parts._replace(fragment=""))
    if not parts.fragment.startswith("sha256="):
        raise ModelZooError(
            f"URL '{url}' ends in an unknown fragment '#{parts.fragment}'; the only one "
            "understood is #sha256=<64 hex digits>"
        )
    return bare, _check_sha256(parts.fragment[len("sha256=") :], f"URL '{url}'")


def _gdrive_id(url: str) -> str | None:
    """The Google Drive file id of a ``gdrive://ID`` or Google Drive URL; None otherwise."""
    if url.lower().startswith("gdrive://"):
        file_id = url[len("gdrive://") :].strip("/")
    elif (urllib.parse.urlsplit(url).hostname or "") in _GDRIVE_HOSTS:
        from gdown.parse_url import parse_url

        file_id = parse_url(url)[0] or ""
    else:
        return None
    if not _GDRIVE_ID_RE.match(file_id):
        raise ModelZooError(
            f"cannot find a Google Drive file id in '{url}'; use gdrive://<file id> or a "
            "https://drive.google.com/file/d/<file id>/view link to a single file"
        )
    return file_id


def cache_filename(url: str) -> str:
    """The cache file name of ``url`` (without fragment): ``<file id>.pth`` for Google Drive;
    otherwise the URL's last path component, sanitised to ``[A-Za-z0-9._-]``, with the first 8
    hex digits of the URL's SHA-256 before the extension, so that two URLs ending in the same
    name (``.../model_final.pth``) never share a cache file."""
    file_id = _gdrive_id(url)
    if file_id is not None:
        return f"{file_id}.pth"
    base = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".") or "checkpoint.pth"
    stem, ext = os.path.splitext(base)
    return f"{stem}-{hashlib.sha256(url.encode()).hexdigest()[:8]}{ext}"


def _describe_failure(e: Exception, url: str, progress: dict) -> str:
    """One sentence saying why the transfer of ``url`` failed and what to do."""
    import requests
    from gdown.exceptions import DownloadError, FileURLRetrievalError

    offline = (
        "check the network (and HTTP(S)_PROXY / NO_PROXY), or fetch the file by hand and set "
        "MODEL.WEIGHTS to its local path"
    )
    if isinstance(e, FileURLRetrievalError):
        return (
            f"Google Drive did not give the file (is it shared as 'Anyone with the link'? is "
            f"its download quota exceeded?): {str(e).strip()}"
        )
    if isinstance(e, requests.HTTPError):
        resp = e.response
        status = f"HTTP {resp.status_code} {resp.reason}" if resp is not None else str(e)
        return f"the server answered {status}; check the URL (or the zoo entry's url)"
    if isinstance(e, requests.exceptions.ProxyError):
        return f"the proxy refused the connection ({e}); {offline}"
    if isinstance(e, requests.exceptions.SSLError):
        return f"TLS failed ({e}); check the system certificates or the URL"
    if isinstance(e, requests.Timeout):
        return f"no answer from the server within {TIMEOUT_S:.0f} s ({e}); {offline}"
    if isinstance(e, requests.ConnectionError):
        return f"cannot connect (connection refused, no network or unknown host: {e}); {offline}"
    if isinstance(e, DownloadError) and "incomplete" in str(e).lower():
        announced = progress.get("total")
        if announced is None:  # no chunk arrived: take the size from gdown's message
            m = re.search(r"announced (\d+) bytes", str(e))
            announced = int(m.group(1)) if m else None
        return _truncated(progress.get("done"), announced)
    if isinstance(e, OSError):
        return (
            f"cannot write into the cache folder ({e}); free some space or set {CACHE_ENV} "
            "to a writable folder"
        )
    return f"{type(e).__name__}: {e}"


def _truncated(got: int | None, announced: int | None) -> str:
    if announced is None:
        detail = "the connection closed before the end of the file"
    elif got is None:
        detail = (
            f"the server announced {announced} bytes but the connection closed before all of "
            "them arrived"
        )
    else:
        detail = f"the server announced {announced} bytes but only {got} arrived"
    return f"the download is truncated: {detail}; nothing was kept in the cache, try again"


def _fetch(url: str, fetch_url: str, target: str, use_cookies: bool) -> None:
    """gdown ``fetch_url`` into ``target``; check it is complete and not empty."""
    import gdown

    progress: dict = {}

    def on_chunk(done: int, total: int | None) -> None:
        progress["done"], progress["total"] = done, total

    try:
        gdown.download(
            fetch_url,
            output=target,
            quiet=True,
            use_cookies=use_cookies,
            timeout=TIMEOUT_S,
            progress=on_chunk,
        )
    except Exception as e:
        raise ModelZooError(
            f"cannot download '{url}': {_describe_failure(e, url, progress)}"
        ) from e
    size = os.path.getsize(target) if os.path.isfile(target) else 0
    if size == 0:
        raise ModelZooError(f"cannot download '{url}': the server sent an empty file")
    announced = progress.get("total")
    if announced is not None and size != announced:
        raise ModelZooError(f"cannot download '{url}': {_truncated(size, announced)}")


def download(url: str, sha256: str | None = None, cache_dir: str | None = None) -> str:
    """Download ``url`` into the cache and return the local file path.

    ``url`` is ``http(s)://...``, ``gdrive://<file id>`` or a Google Drive link, optionally
    ending in ``#sha256=<hex>``. The expected hash is ``sha256`` or that fragment (they must
    agree); without one the file is only checked for size. ``cache_dir`` defaults to
    :func:`default_cache_dir`; the file name is :func:`cache_filename`.

    A cached file is reused without any network access when it exists and, if a hash is
    known, matches it (a mismatching one is downloaded again). A download goes into a private
    temp folder inside the cache, is checked (not empty, as long as the server's
    Content-Length, sha256), fsynced and renamed into place; whatever fails, the temp folder
    is removed, so the cache never holds a partial or unverified file.

    Raises:
        ModelZooError: malformed URL or hash, HTTP error (e.g. 404), no network or connection
            refused, timeout, truncated or empty file, sha256 mismatch (expected and got are
            printed), cache folder not writable. The message names the URL and the cause.
    """
    url, fragment_sha = _split_fragment(url.strip())
    expected = _check_sha256(sha256, f"download of '{url}'") if sha256 else None
    if fragment_sha and expected and fragment_sha != expected:
        raise ModelZooError(
            f"two different sha256 for '{url}': {expected} (argument) and {fragment_sha} "
            "(#sha256= fragment); keep one"
        )
    expected = expected or fragment_sha
    if not url.lower().startswith(("http://", "https://", "gdrive://")):
        raise ModelZooError(f"'{url}' is not a URL; download() takes http(s):// or gdrive://")
    file_id = _gdrive_id(url)
    fetch_url = url if file_id is None else f"https://drive.google.com/uc?id={file_id}"

    folder = os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ModelZooError(
            f"cannot create the cache folder '{folder}' for '{url}' ({e}); set {CACHE_ENV} to "
            "a writable folder"
        ) from e
    final = os.path.join(folder, cache_filename(url))
    if os.path.isfile(final):
        if expected is None:
            logger.info("Using cached %s for %s (no sha256 given)", final, url)
            return final
        got = file_sha256(final)
        if got == expected:
            logger.info("Using cached %s for %s (sha256 ok)", final, url)
            return final
        logger.warning(
            "Cached %s has sha256 %s, expected %s: downloading %s again", final, got, expected, url
        )

    logger.info("Downloading %s to %s", url, final)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-", dir=folder)
    try:
        target = os.path.join(tmp_dir, os.path.basename(final))
        _fetch(url, fetch_url, target, use_cookies=file_id is not None)
        got = file_sha256(target)
        if expected is not None and got != expected:
            raise ModelZooError(
                f"sha256 mismatch for '{url}': expected {expected}, got {got}. The file is "
                "corrupted or was replaced on the server; nothing was kept in the cache. Try "
                "again, or fix the expected hash if the file changed on purpose"
            )
        with open(target, "rb") as f:
            os.fsync(f.fileno())
        os.replace(target, final)
    except ModelZooError:
        raise
    except Exception as e:
        raise ModelZooError(f"cannot download '{url}': {type(e).__name__}: {e}") from e
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info("Downloaded %s (sha256 %s)", final, got)
    return final


def resolve_weights(spec: str) -> str:
    """Turn a ``MODEL.WEIGHTS`` value into a local file path and return it.

    * ``""`` -> ``""`` (nothing to load);
    * ``zoo://NAME`` -> the entry's URL, downloaded and checked against its sha256;
    * ``http(s)://...`` (optionally ``#sha256=<hex>``), ``gdrive://<file id>``, Google Drive
      links -> downloaded (see :func:`download`);
    * anything else is a local path (``~`` expanded) and must be an existing file.

    Raises:
        ModelZooError: unknown zoo name (the known ones are listed) or a failed download.
        FileNotFoundError: a local path that is not a file; the message names it and the
            accepted forms.
    """
    if not spec:
        return ""
    if spec.lower().startswith("zoo://"):
        name = spec[len("zoo://") :].strip("/")
        entry = get_entry(name)
        try:
            return download(entry.url, entry.sha256)
        except ModelZooError as e:
            raise ModelZooError(f"model zoo entry '{name}': {e}") from e
    if is_remote_spec(spec):
        return download(spec)
    path = os.path.expanduser(spec)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"checkpoint '{spec}' does not exist (not a file); MODEL.WEIGHTS takes {ACCEPTED_FORMS}"
        )
    return path
