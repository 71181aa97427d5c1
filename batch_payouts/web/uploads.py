"""Uploaded spreadsheets: checked, stored under random names, and remembered with their review.

An upload is stored in ``<data dir>/uploads/<id>.<ext>`` where ``id`` is 128
random bits: the user's file name never becomes a path (no traversal, no
clashes), and nobody can guess another user's upload.  The name the user gave
is kept in ``<id>.json`` beside it, with who uploaded it and the review, so the
ledger and the audit record name the real file.  Raw uploads are never served
back; only the sheets we write from them are.

XLSX files are zip archives, so before any reader opens one it is checked
against zip bombs: too many members, too much uncompressed data, or a
compression ratio no real workbook has.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from batch_payouts.errors import BatchError
from batch_payouts.files.read import TEXT as READ_TEXT
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

ALLOWED_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx")
ZIP_MAX_MEMBERS = 2_000
ZIP_MAX_UNCOMPRESSED = 512 * 1024 * 1024
ZIP_MAX_RATIO = 200  # real sheets compress 5-30x; a bomb compresses thousands of times
COPY_CHUNK = 1024 * 1024
ID_PATTERN = re.compile(r"[0-9a-f]{32}")
OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


class UploadRefused(BatchError):
    """The upload is not stored: wrong type, too large, empty, or a zip bomb."""


@dataclass
class Upload:
    id: str
    name: str  # as the user named it; for display and the audit record only
    suffix: str
    size: int
    uploaded_at: float
    user: str | None = None
    amount_unit: str = "cents"
    review: dict[str, Any] | None = None
    batch_id: str | None = None
    sheet: str | None = None  # the workbook sheet the user chose on the review page; None: the first with data


def clean_name(name: str) -> str:
    """The last path part of what the browser sent, without control characters, at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in base if c.isprintable()).strip()
    return base[:200] or "archivo"


def check_xlsx(path: Path, name: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > ZIP_MAX_MEMBERS:
                raise UploadRefused(TEXT.ZIP_BOMB, name=name, detail=f"{len(members)} members")
            total = sum(m.file_size for m in members)
            if total > ZIP_MAX_UNCOMPRESSED:
                raise UploadRefused(TEXT.ZIP_BOMB, name=name, detail=f"{total // 2**20} MB")
            for member in members:
                if member.file_size > 1024 * 1024 and member.file_size > ZIP_MAX_RATIO * max(1, member.compress_size):
                    ratio = member.file_size // max(1, member.compress_size)
                    raise UploadRefused(TEXT.ZIP_BOMB, name=name, detail=f"{ratio}:1")
            if "xl/workbook.xml" not in {m.filename for m in members}:
                raise UploadRefused(TEXT.NOT_XLSX, name=name)
    except zipfile.BadZipFile as exc:
        if is_encrypted_workbook(path):  # the CLI's advice (files.read), not "save it as .xlsx"
            raise UploadRefused(READ_TEXT.PASSWORD_PROTECTED, path=name) from exc
        raise UploadRefused(TEXT.NOT_XLSX, name=name) from exc


def is_encrypted_workbook(path: Path) -> bool:
    """Excel saves a workbook with a password as an OLE2 compound file holding an «EncryptedPackage»
    stream instead of a zip: saving it "as .xlsx" again changes nothing, removing the password does."""
    with open(path, "rb") as handle:
        if handle.read(len(OLE_MAGIC)) != OLE_MAGIC:
            return False
        handle.seek(0)
        while chunk := handle.read(COPY_CHUNK):
            # a directory entry's name: entries are 128-byte aligned, so no 1 MB chunk cuts one
            if ENCRYPTED_PACKAGE in chunk:
                return True
    return False


class UploadStore:
    """The uploads folder of the data directory."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._planned: dict[str, int] = {}  # batch id -> valid rows of its review (planned_rows)
        root.mkdir(parents=True, exist_ok=True)

    def save(self, name: str, source: BinaryIO, *, user: str | None, amount_unit: str) -> Upload:
        name = clean_name(name)
        suffix = Path(name).suffix.lower()
        if suffix not in ALLOWED_SUFFIXES:
            raise UploadRefused(TEXT.BAD_TYPE, name=name)
        upload_id = secrets.token_hex(16)
        target = self.root / f"{upload_id}{suffix}"
        size = 0
        descriptor, temp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                while chunk := source.read(COPY_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadRefused(TEXT.TOO_LARGE, name=name, limit=self.max_bytes // 2**20)
                    out.write(chunk)
            if size == 0:
                raise UploadRefused(TEXT.EMPTY, name=name)
            if suffix == ".xlsx":
                check_xlsx(Path(temp), name)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        upload = Upload(upload_id, name, suffix, size, time.time(), user=user, amount_unit=amount_unit)
        self.put(upload)
        return upload

    def prune(self, max_age_days: float) -> int:
        """Delete uploads (and their reviews) older than ``max_age_days``: they hold personal data and
        are not needed once paid -- the results sheet, the ledger and the audit log keep the record."""
        cutoff = time.time() - max_age_days * 86400
        removed = 0
        for meta in self.root.glob("*.json"):
            upload = self.get(meta.stem)
            if upload is None or upload.uploaded_at >= cutoff:
                continue
            for path in (self.path(upload), self.annotated_path(upload), meta):
                path.unlink(missing_ok=True)
            removed += 1
        return removed

    def path(self, upload: Upload) -> Path:
        return self.root / f"{upload.id}{upload.suffix}"

    def annotated_path(self, upload: Upload) -> Path:
        return self.root / f"{upload.id}.review.xlsx"

    def get(self, upload_id: str) -> Upload | None:
        if not ID_PATTERN.fullmatch(upload_id or ""):
            return None
        try:
            data = json.loads((self.root / f"{upload_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return Upload(**data)

    def planned_rows(self, batch_id: str) -> int:
        """The valid rows the review counted for the upload that became ``batch_id`` (0 if no upload
        here did): another web instance's run, followed through a shared data directory.  Found
        values are remembered; an upload's review of a batch id never changes."""
        if batch_id in self._planned:
            return self._planned[batch_id]
        for meta in self.root.glob("*.json"):
            upload = self.get(meta.stem)
            if upload is not None and upload.batch_id == batch_id and upload.review and upload.review.get("valid"):
                self._planned[batch_id] = int(upload.review["valid"])
                return self._planned[batch_id]
        return 0

    def put(self, upload: Upload) -> None:
        """Write the upload's record atomically (temp file, then rename)."""
        descriptor, temp = tempfile.mkstemp(dir=self.root, prefix=".meta-")
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(asdict(upload), out, ensure_ascii=False)
        os.replace(temp, self.root / f"{upload.id}.json")
