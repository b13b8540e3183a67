"""The team's documents folder: every text file under it, as knowledge documents.

Files are read recursively in path order; hidden files and folders (`.git`, `.DS_Store`)
are not documents and are passed over silently. A file that is not text (NUL bytes, or
not UTF-8) or is larger than `MAX_DOCUMENT_BYTES` is skipped with the reason, never
fatal: one PDF in the folder must not stop the import of the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..core.knowledge import KnowledgeDocument, file_document
from ..defaults import MAX_DOCUMENT_BYTES
from ..errors import IntercomResponderError


class DocumentsFolderError(IntercomResponderError):
    """The folder itself cannot be read (missing, not a folder, no permission)."""


@dataclass(frozen=True)
class SkippedFile:
    path: str  # relative to the folder
    reason: str


def read_documents(folder: Path) -> Iterator[KnowledgeDocument | SkippedFile]:
    """Each file under `folder`, as a document or as the reason it was skipped."""
    root = Path(folder)
    if not root.is_dir():
        raise DocumentsFolderError(f"{root}: not a folder (sync --docs wants a folder of files)")
    for path in _files(root):
        relative = path.relative_to(root).as_posix()
        try:
            size = path.stat().st_size
            if size > MAX_DOCUMENT_BYTES:
                yield SkippedFile(relative, f"over {MAX_DOCUMENT_BYTES // 1_000_000} MB")
                continue
            raw = path.read_bytes()
            mtime = path.stat().st_mtime
        except OSError as exc:
            yield SkippedFile(relative, f"cannot be read: {exc.strerror or exc}")
            continue
        if b"\x00" in raw:
            yield SkippedFile(relative, "not text (binary)")
            continue
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            yield SkippedFile(relative, "not text (not UTF-8)")
            continue
        updated_at = datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")
        document = file_document(relative, text, updated_at=updated_at)
        yield SkippedFile(relative, document) if isinstance(document, str) else document


def _files(root: Path) -> Iterator[Path]:
    try:
        walk = sorted(os.walk(root, onerror=_raise))
    except OSError as exc:
        raise DocumentsFolderError(f"{root}: cannot be read: {exc}") from exc
    for directory, _, names in walk:
        parts = Path(directory).relative_to(root).parts
        if any(part.startswith(".") for part in parts):
            continue
        for name in sorted(names):
            path = Path(directory) / name
            if not name.startswith(".") and path.is_file():
                yield path


def _raise(error: OSError) -> None:
    raise error
