"""Download the full public RCAEval release, verify its checksum, and unpack it.

Source: the RCAEval benchmark's Zenodo record **14590730** (DOI 10.5281/zenodo.14590730), one
zip per suite and system, ~5 GB in all (``RE2-*`` the largest)::

    https://zenodo.org/records/14590730/files/<SUITE>.zip?download=1
    SUITE in RE1-OB RE1-SS RE1-TT RE2-OB RE2-SS RE2-TT RE3-OB RE3-SS RE3-TT

Each zip unpacks to the nested layout :mod:`aisre.datasets.rcaeval` reads
(``RE2-OB/<service>_<fault>/<rep>/...``). A flat variant of the same data is on Figshare
(article 31048672); pass its file URL as ``url=``.

**Checksums.** Zenodo publishes an MD5 for every file in the record's metadata
(``https://zenodo.org/api/records/14590730``, ``files[].checksum`` = ``"md5:<hex>"``). When no
checksum is given, :func:`download` reads it from there before downloading; pass
``checksum="sha256:<hex>"`` or ``"md5:<hex>"`` to pin one yourself (required for a custom
``url``). The archive is hashed while it streams to disk; a mismatch deletes the partial file
and raises :class:`DataError`. Only after the check is the zip unpacked (members that would land
outside ``dest`` are refused).

Only the standard library (urllib) is used; the data's licence is MIT (RCAEval's LICENSE).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from aisre.errors import DataError, UsageError

__all__ = ["RECORD", "SUITES", "download", "suite_url", "verify"]

RECORD = "14590730"
"""The Zenodo record holding the RCAEval RE1/RE2/RE3 archives."""

SUITES = tuple(f"RE{n}-{s}" for n in (1, 2, 3) for s in ("OB", "SS", "TT"))
"""The archives of the release: one per suite and system."""

_API = "https://zenodo.org/api/records/{record}"
_FILE = "https://zenodo.org/records/{record}/files/{name}?download=1"
_CHUNK = 1 << 20


def suite_url(suite: str) -> str:
    """Return the Zenodo download URL of *suite* (e.g. ``RE2-OB``).

    Raises:
        UsageError: for a suite the release does not have.
    """
    name = _suite(suite)
    return _FILE.format(record=RECORD, name=f"{name}.zip")


def _suite(suite: str) -> str:
    name = suite.upper().removesuffix(".ZIP")
    if name not in SUITES:
        raise UsageError(f"unknown RCAEval suite {suite!r}; known: {', '.join(SUITES)}")
    return name


def _parse_checksum(checksum: str) -> tuple[str, str]:
    algo, sep, digest = checksum.partition(":")
    if not sep:  # a bare hex digest: tell the algorithms apart by length
        algo, digest = {32: "md5", 64: "sha256"}.get(len(checksum), ""), checksum
    algo = algo.lower()
    if algo not in ("md5", "sha256") or not digest or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise UsageError(f"bad checksum {checksum!r}; expected 'sha256:<hex>' or 'md5:<hex>'")
    return algo, digest.lower()


def verify(path: str | Path, checksum: str) -> None:
    """Check that the file at *path* has *checksum* (``sha256:<hex>`` or ``md5:<hex>``).

    Raises:
        DataError: when the digest differs or the file cannot be read.
        UsageError: for a malformed checksum.
    """
    algo, digest = _parse_checksum(checksum)
    h = hashlib.new(algo)
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    if h.hexdigest() != digest:
        raise DataError(f"{algo} checksum mismatch: expected {digest}, got {h.hexdigest()}", path=path, field="checksum")


def _open(url: str, timeout: float) -> Any:
    try:
        return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310  (http(s) or file URLs by design)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"cannot download: {reason}", path=url) from exc


def _zenodo_checksum(name: str, api: str, timeout: float) -> str:
    with _open(api, timeout) as resp:
        try:
            doc = json.loads(resp.read())
        except ValueError as exc:
            raise DataError("the record metadata is not JSON", path=api) from exc
    files = doc.get("files") if isinstance(doc, dict) else None
    for item in files if isinstance(files, list) else []:
        if isinstance(item, dict) and item.get("key") == name and isinstance(item.get("checksum"), str):
            return item["checksum"]
    raise DataError(f"the record lists no checksum for {name}", path=api, field="files")


def _extract(archive: Path, dest: Path) -> None:
    root = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                target = (root / member.filename).resolve()
                if root != target and root not in target.parents:
                    raise DataError("archive member would land outside the destination", path=archive, field=member.filename)
            zf.extractall(root)
    except zipfile.BadZipFile as exc:
        raise DataError(f"not a zip archive: {exc}", path=archive) from exc
    except OSError as exc:
        raise DataError(f"cannot unpack: {exc.strerror or exc}", path=archive) from exc


def download(
    suite: str,
    dest: str | Path,
    *,
    url: str | None = None,
    checksum: str | None = None,
    api_url: str | None = None,
    extract: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download the RCAEval archive *suite* into *dest*, verify it, unpack it; return *dest*.

    The archive is kept as ``dest/<SUITE>.zip`` (a verified archive already there is not
    downloaded again). With ``extract=False`` the path of the archive is returned instead.

    Raises:
        UsageError: for an unknown suite, a malformed checksum, or a custom *url* without one.
        DataError: when the download fails, the checksum does not match, or the zip is bad.
    """
    name = f"{_suite(suite)}.zip"
    if url is not None and checksum is None:
        raise UsageError("a custom url needs a checksum ('sha256:<hex>' or 'md5:<hex>')")
    if checksum is None:
        checksum = _zenodo_checksum(name, api_url or _API.format(record=RECORD), timeout)
    algo, digest = _parse_checksum(checksum)
    folder = Path(dest)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the destination: {exc.strerror}", path=folder) from exc
    archive = folder / name
    have = False
    if archive.is_file():
        try:
            verify(archive, checksum)
            have = True
        except DataError:
            pass  # a stale or partial archive: fetch it again
    if not have:
        part = archive.with_name(name + ".part")
        h = hashlib.new(algo)
        try:
            with _open(url or suite_url(suite), timeout) as resp, open(part, "wb") as out:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise DataError(f"download interrupted: {exc}", path=url or suite_url(suite)) from exc
        if h.hexdigest() != digest:
            part.unlink(missing_ok=True)
            raise DataError(f"{algo} checksum mismatch: expected {digest}, got {h.hexdigest()}", path=url or suite_url(suite), field="checksum")
        shutil.move(str(part), archive)
    if not extract:
        return archive
    _extract(archive, folder)
    return folder
