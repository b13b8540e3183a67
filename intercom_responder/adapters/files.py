"""Files the daemon owns: locked for one process, written atomically, read with care.

A file that cannot be read stops the command that needs it, with a message naming the
file, and is never overwritten: a person decides what to do with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

from ..errors import Dependency, IntercomResponderError


class StateFileError(IntercomResponderError):
    """A file of the daemon cannot be used; the message names the file and what to do."""

    dependency = Dependency.STATE


class StateLockedError(StateFileError):
    """Another process holds the file."""


def lock_exclusively(path: Path, advice: str) -> TextIO:
    """Hold `<path>.lock` for the life of the process; a second holder fails at once."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the process lifetime
    except OSError as exc:
        raise StateFileError(f"{lock_path}: cannot create the lock file: {exc.strerror}") from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StateLockedError(
            f"{path}: already in use by another intercom-responder (pid {holder}); {advice}"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def write_atomically(path: Path, document: Any) -> None:
    """Temp file, fsync, rename, fsync the directory: a crash leaves old or new, never half."""
    write_text_atomically(path, json.dumps(document, separators=(",", ":"), sort_keys=True))


def write_text_atomically(path: Path, text: str) -> None:
    """The same for any text, written as it is (a CSV keeps its line ends)."""
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_json(path: Path, what: str) -> Any:
    """The document at `path`, None when missing; unreadable files are an error, untouched."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateFileError(
            f"{path}: cannot read the {what} ({exc}); it was left unchanged"
        ) from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StateFileError(
            f"{path}: the {what} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); it was left unchanged - repair it or move it away"
        ) from exc
