"""The repository stands alone: a user's clone has nothing beside it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "tests" / "contracts" / "intercom-openapi-2.16.yaml"
SPEC_SHA256 = "212b09336bf561992d998e6650d4eaacb44aa0a0f02504e398cf10f1cfb9d238"
#: The folder the developers keep beside the repository; spelled in parts so this file
#: does not match its own check.
_BESIDE = "sha" + "red"
OUTSIDE_PATTERNS = (f"../{_BESIDE}", f'"{_BESIDE}"', f"'{_BESIDE}'")


def tracked_files() -> list[Path]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return [REPO / name for name in listing.split("\0") if name]


def test_the_vendored_openapi_description_is_the_official_file() -> None:
    assert hashlib.sha256(SPEC.read_bytes()).hexdigest() == SPEC_SHA256


def test_no_file_refers_to_a_folder_beside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        if path == SPEC or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if any(pattern in text for pattern in OUTSIDE_PATTERNS):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
