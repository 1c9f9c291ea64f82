"""Model zoo: catalog, ``resolve_weights`` and downloads from a real HTTP server on 127.0.0.1
(never the real network): cache reuse, sha256 checks, 404, truncation, refused connections,
and ``Checkpointer.load`` / ``load_teacher`` on URLs and ``zoo://`` names."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from dgnet_plugin.model_zoo import (
    MODEL_ZOO,
    ModelZooError,
    ZooEntry,
    cache_filename,
    default_cache_dir,
    download,
    get_entry,
    register_entry,
    resolve_weights,
)
from dgnet_plugin.utils.checkpoint import Checkpointer, CheckpointError

REPO = Path(__file__).resolve().parents[1]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; ``/truncated/NAME`` announces NAME's full size but sends half."""

    def do_GET(self):
        self.server.hits[self.path] += 1
        if self.path.startswith("/truncated/"):
            data = (Path(self.directory) / self.path[len("/truncated/") :]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DGNET_PLUGIN_CACHE", str(folder))
    for var in ("NO_PROXY", "no_proxy"):  # loopback requests must never go through a proxy
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    return folder


@pytest.fixture
def server(tmp_path, cache):
    """A ThreadingHTTPServer on 127.0.0.1 serving ``ckpt.pth`` (a real checkpoint) and
    ``corrupt.pth`` (the same bytes, some flipped). Yields ``base`` (the URL), ``sha`` (of
    ckpt.pth), ``hits`` (requests per path) and ``root`` (the served folder)."""
    root = tmp_path / "www"
    root.mkdir()
    torch.manual_seed(0)
    torch.save({"model": torch.nn.Linear(3, 2).state_dict()}, root / "ckpt.pth")
    data = (root / "ckpt.pth").read_bytes()
    bad = bytearray(data)
    for i in range(len(bad) // 2, len(bad) // 2 + 16):
        bad[i] ^= 0xFF
    (root / "corrupt.pth").write_bytes(bytes(bad))
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    httpd.hits = Counter()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(
            base=f"http://127.0.0.1:{httpd.server_port}",
            sha=hashlib.sha256(data).hexdigest(),
            hits=httpd.hits,
            root=root,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def clean_zoo():
    saved = dict(MODEL_ZOO)
    yield MODEL_ZOO
    MODEL_ZOO.clear()
    MODEL_ZOO.update(saved)


def _linear_weight(path: str) -> torch.Tensor:
    return torch.load(path, weights_only=True)["model"]["weight"]


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_shipped_zoo_is_empty_and_unknown_names_list_the_known_ones(clean_zoo):
    assert MODEL_ZOO == {}  # nothing is published yet: no invented URLs or hashes
    with pytest.raises(ModelZooError, match=r"unknown model zoo entry 'nope'.*none"):
        get_entry("nope")
    sha = "a" * 64
    register_entry(ZooEntry("b_model", "configs/dgnet_r50.yml", "https://x/b.pth", sha))
    register_entry(ZooEntry("a_model", "configs/dgnet_r50.yml", "https://x/a.pth", sha))
    with pytest.raises(ModelZooError, match=r"known entries: a_model, b_model"):
        resolve_weights("zoo://nope")


def test_register_entry_rejects_a_different_duplicate_and_bad_fields(clean_zoo):
    e = ZooEntry("m", "configs/dgnet_r50.yml", "https://x/m.pth", "A" * 64, {"rank1": 1.0})
    assert e.sha256 == "a" * 64  # normalised to lower case
    assert register_entry(e) is e
    register_entry(
        ZooEntry("m", "configs/dgnet_r50.yml", "https://x/m.pth", "a" * 64, {"rank1": 1.0})
    )
    with pytest.raises(ModelZooError, match="already registered"):
        register_entry(ZooEntry("m", "configs/dgnet_r50.yml", "https://x/other.pth", "a" * 64))
    with pytest.raises(ModelZooError, match="not 64 hex digits"):
        ZooEntry("x", "c.yml", "https://x/x.pth", "abc")
    with pytest.raises(ModelZooError, match="must start with"):
        ZooEntry("x", "c.yml", "/local/x.pth", "a" * 64)
    with pytest.raises(ModelZooError, match="name"):
        ZooEntry("a/b", "c.yml", "https://x/x.pth", "a" * 64)


def test_download_verifies_and_reuses_the_cache_without_the_server(server, cache):
    base, sha, hits = server.base, server.sha, server.hits
    url = f"{base}/ckpt.pth"
    path = download(url, sha)
    assert Path(path).parent == cache and default_cache_dir() == str(cache)
    assert Path(path).name == cache_filename(url) and Path(path).name.startswith("ckpt-")
    assert _linear_weight(path).shape == (2, 3)
    assert hits["/ckpt.pth"] == 1
    assert download(url, sha) == path and download(url) == path
    assert hits["/ckpt.pth"] == 1  # both reuses came from the cache
    assert _listing(cache) == [Path(path).name]  # no temp folder left


def test_a_corrupted_cache_file_is_downloaded_again(server, cache):
    base, sha, hits = server.base, server.sha, server.hits
    path = download(f"{base}/ckpt.pth", sha)
    Path(path).write_bytes(b"garbage")
    assert download(f"{base}/ckpt.pth", sha) == path
    assert hits["/ckpt.pth"] == 2
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha


def test_sha256_fragment_is_used_and_checked(server, cache):
    base, sha = server.base, server.sha
    path = resolve_weights(f"{base}/ckpt.pth#sha256={sha}")
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha
    with pytest.raises(ModelZooError, match=f"expected {'0' * 64}, got {sha}"):
        resolve_weights(f"{base}/ckpt.pth#sha256={'0' * 64}")
    with pytest.raises(ModelZooError, match="not 64 hex digits"):
        resolve_weights(f"{base}/ckpt.pth#sha256=1234")
    with pytest.raises(ModelZooError, match="two different sha256"):
        download(f"{base}/ckpt.pth#sha256={sha}", "0" * 64)


def test_wrong_hash_names_expected_and_got_and_leaves_nothing(server, cache):
    base, sha = server.base, server.sha
    url = f"{base}/corrupt.pth"
    got = hashlib.sha256((server.root / "corrupt.pth").read_bytes()).hexdigest()
    with pytest.raises(ModelZooError) as info:
        download(url, sha)
    msg = str(info.value)
    assert url in msg and f"expected {sha}" in msg and f"got {got}" in msg
    assert _listing(cache) == []


def test_http_404_is_a_clear_error_and_leaves_nothing(server, cache):
    url = f"{server.base}/missing.pth"
    with pytest.raises(ModelZooError, match=r"'http://127\.0\.0\.1:\d+/missing\.pth'.*HTTP 404"):
        download(url)
    assert _listing(cache) == []


def test_truncated_download_fails_cleanly_without_a_known_hash(server, cache):
    base, hits = server.base, server.hits
    url = f"{base}/truncated/ckpt.pth"
    with pytest.raises(ModelZooError, match=r"/truncated/ckpt\.pth'.*truncated") as info:
        download(url)
    size = (server.root / "ckpt.pth").stat().st_size
    assert str(size) in str(info.value)  # the announced size is reported
    assert hits["/truncated/ckpt.pth"] == 1
    assert _listing(cache) == []  # neither the final file nor gdown's .part file


def test_size_check_catches_truncation_that_gdown_would_miss(server, cache, monkeypatch):
    """Belt and braces: if gdown returned normally after a short body, the size check against
    the announced Content-Length still fails the download."""
    import gdown

    data = (server.root / "ckpt.pth").read_bytes()

    def short_download(url, output, progress, **kwargs):
        Path(output).write_bytes(data[:100])
        progress(100, len(data))
        return output

    monkeypatch.setattr(gdown, "download", short_download)
    with pytest.raises(ModelZooError, match=f"announced {len(data)} bytes but only 100"):
        download(f"{server.base}/ckpt.pth")
    assert _listing(cache) == []


def test_connection_refused_is_a_clear_error(cache):
    with socket.socket() as sock:  # bound but not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/ckpt.pth"
        with pytest.raises(ModelZooError, match=r"cannot connect.*MODEL\.WEIGHTS") as info:
            download(url)
    assert url in str(info.value)
    assert _listing(cache) == []


def test_zoo_name_downloads_the_registered_entry(server, cache, clean_zoo):
    base, sha = server.base, server.sha
    register_entry(ZooEntry("linear_test", "configs/dgnet_r50.yml", f"{base}/ckpt.pth", sha))
    path = resolve_weights("zoo://linear_test")
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha
    register_entry(ZooEntry("broken_test", "configs/dgnet_r50.yml", f"{base}/corrupt.pth", sha))
    with pytest.raises(ModelZooError, match=r"model zoo entry 'broken_test'.*sha256 mismatch"):
        resolve_weights("zoo://broken_test")
    assert _listing(cache) == [Path(path).name]


def test_google_drive_specs_go_through_gdown(cache, tmp_path, monkeypatch):
    import gdown

    src = tmp_path / "drive.pth"
    torch.save({"model": torch.nn.Linear(3, 2).state_dict()}, src)
    calls = []

    def fake_download(url, output, **kwargs):  # no network: copy what "Drive" holds
        calls.append(url)
        shutil.copyfile(src, output)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    fid = "1AbC_def-GHIjklmnopqrstuvwxYZ"
    path = resolve_weights(f"gdrive://{fid}")
    assert Path(path) == cache / f"{fid}.pth" and _linear_weight(path).shape == (2, 3)
    assert calls == [f"https://drive.google.com/uc?id={fid}"]
    other = "9ZyX_other-ID0123456789abcdef"
    assert resolve_weights(f"https://drive.google.com/file/d/{other}/view?usp=sharing") == str(
        cache / f"{other}.pth"
    )
    assert calls[-1] == f"https://drive.google.com/uc?id={other}"
    with pytest.raises(ModelZooError, match="Google Drive file id"):
        resolve_weights("https://drive.google.com/drive/my-drive")


def test_local_paths_pass_through_and_missing_ones_name_the_accepted_forms(tmp_path):
    assert resolve_weights("") == ""
    f = tmp_path / "w.pth"
    f.write_bytes(b"x")
    assert resolve_weights(str(f)) == str(f)
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match=r"nope\.pth.*zoo://NAME.*https?"):
        resolve_weights(missing)


def test_checkpointer_loads_from_the_loopback_server(server, cache):
    base, sha = server.base, server.sha
    model = torch.nn.Linear(3, 2)
    Checkpointer(model).load(f"{base}/ckpt.pth#sha256={sha}")
    expected = _linear_weight(str(server.root / "ckpt.pth"))
    assert torch.equal(model.weight.detach(), expected)
    with pytest.raises(CheckpointError, match=r"missing\.pth'.*HTTP 404"):
        Checkpointer(model).load(f"{base}/missing.pth")
    with pytest.raises(CheckpointError, match="unknown model zoo entry 'nothing'"):
        Checkpointer(model).load("zoo://nothing")


def test_load_teacher_from_a_zoo_entry_uses_its_config(server, cache, clean_zoo):
    from dgnet_plugin.config import get_cfg, load_cfg_file
    from dgnet_plugin.methods.dgnet.teacher import load_teacher
    from dgnet_plugin.modeling import build_model

    base = server.base
    tcfg = load_cfg_file(
        str(REPO / "configs" / "teacher_cuhk03_cpu_demo.yml"), ["MODEL.BACKBONE.PRETRAIN", "False"]
    )
    src = build_model(tcfg, 5)
    torch.save({"model": src.state_dict()}, server.root / "teacher.pth")
    sha = hashlib.sha256((server.root / "teacher.pth").read_bytes()).hexdigest()
    register_entry(
        ZooEntry("teacher_test", "configs/teacher_cuhk03_cpu_demo.yml", f"{base}/teacher.pth", sha)
    )
    cfg = get_cfg("dgnet")
    cfg.MODEL.TEACHER.WEIGHTS = "zoo://teacher_test"
    cfg.MODEL.TEACHER.CONFIG = ""  # taken from the zoo entry
    teacher = load_teacher(cfg, 5, torch.device("cpu"))
    loaded = teacher.state_dict()
    assert loaded.keys() == src.state_dict().keys()
    for k, v in src.state_dict().items():
        assert torch.equal(v, loaded[k]), k
    cfg.MODEL.TEACHER.WEIGHTS = f"{base}/no_teacher.pth"
    cfg.MODEL.TEACHER.CONFIG = "configs/teacher_cuhk03_cpu_demo.yml"
    with pytest.raises(ModelZooError, match="HTTP 404"):
        load_teacher(cfg, 5, torch.device("cpu"))


def test_train_net_does_not_try_to_train_a_zoo_teacher():
    from dgnet_plugin.config import get_cfg
    from dgnet_plugin.methods.dgnet.teacher import dgnet_stages
    from dgnet_plugin.utils.cli import USER_ERRORS

    assert issubclass(ModelZooError, USER_ERRORS)
    cfg = get_cfg("dgnet")
    cfg.MODEL.TEACHER.WEIGHTS = "zoo://some_teacher"
    cfg.MODEL.TEACHER.CONFIG = "configs/teacher_cuhk03_cpu_demo.yml"
    assert dgnet_stages(cfg) == []  # no ConfigError about model_final.pth, no teacher stage
