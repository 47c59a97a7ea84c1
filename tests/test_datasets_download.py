"""The RCAEval download: checksum checked while streaming, bad checksums refused (offline only)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aisre.datasets import download as dl
from aisre.errors import DataError, UsageError


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """A tiny RE2-OB zip in the nested layout."""
    path = tmp_path / "src" / "RE2-OB.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("RE2-OB/checkoutservice_cpu/1/simple_metrics.csv", "time,checkoutservice_cpu\n1705353846,0.4\n1705353847,19.0\n")
        zf.writestr("RE2-OB/checkoutservice_cpu/1/inject_time.txt", "1705353847\n")
    return path


@pytest.fixture()
def server(archive: Path) -> Iterator[str]:
    """Serve the archive and a Zenodo-like record from 127.0.0.1."""
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    record = json.dumps({"files": [{"key": "RE2-OB.zip", "checksum": f"md5:{md5}"}]}).encode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(archive.parent), **kw)  # type: ignore[arg-type]

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/api/records/14590730":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(record)
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_verifies_and_unpacks(server: str, archive: Path, tmp_path: Path) -> None:
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = dl.download("re2-ob", tmp_path / "data", url=f"{server}/RE2-OB.zip", checksum=f"sha256:{sha}")
    case = out / "RE2-OB" / "checkoutservice_cpu" / "1"
    assert (case / "inject_time.txt").read_text() == "1705353847\n"
    from aisre.datasets import rcaeval

    loaded = list(rcaeval.load(out))
    assert [c.id for c in loaded] == ["rcaeval/RE2-OB/checkoutservice_cpu/1"]
    assert loaded[0].truth.fault == "cpu" and loaded[0].system == "OB"


def test_checksum_from_the_record_metadata(server: str, tmp_path: Path) -> None:
    """Without a checksum the record's md5 is fetched first (here from a local stand-in)."""
    orig = dl.suite_url
    try:
        dl.suite_url = lambda suite: f"{server}/RE2-OB.zip"  # type: ignore[assignment]
        path = dl.download("RE2-OB", tmp_path / "d", api_url=f"{server}/api/records/14590730", extract=False)
    finally:
        dl.suite_url = orig  # type: ignore[assignment]
    assert path.name == "RE2-OB.zip" and zipfile.is_zipfile(path)


def test_bad_checksum_is_a_data_error_and_leaves_nothing(server: str, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        dl.download("RE2-OB", tmp_path / "d", url=f"{server}/RE2-OB.zip", checksum="sha256:" + "0" * 64)
    assert err.value.field == "checksum" and "mismatch" in str(err.value)
    assert list((tmp_path / "d").iterdir()) == []


def test_file_url_and_md5(archive: Path, tmp_path: Path) -> None:
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    path = dl.download("RE2-OB", tmp_path / "d", url=archive.as_uri(), checksum=md5, extract=False)
    dl.verify(path, f"md5:{md5}")
    with pytest.raises(DataError, match="mismatch"):
        dl.verify(path, "md5:" + "f" * 32)


def test_unreachable_url_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot download"):
        dl.download("RE1-TT", tmp_path, url="http://127.0.0.1:9/none.zip", checksum="md5:" + "0" * 32, timeout=2)
    with pytest.raises(UsageError, match="unknown RCAEval suite"):
        dl.download("RE4-OB", tmp_path)
    with pytest.raises(UsageError, match="needs a checksum"):
        dl.download("RE1-OB", tmp_path, url="http://127.0.0.1:9/x.zip")
    with pytest.raises(UsageError, match="bad checksum"):
        dl.download("RE1-OB", tmp_path, url="http://127.0.0.1:9/x.zip", checksum="crc:12")
    assert dl.suite_url("RE3-SS") == "https://zenodo.org/records/14590730/files/RE3-SS.zip?download=1"


def test_zip_slip_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "RE1-OB.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    sha = hashlib.sha256(evil.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="outside"):
        dl.download("RE1-OB", tmp_path / "d", url=evil.as_uri(), checksum=sha)
    assert not (tmp_path / "escape.txt").exists()
