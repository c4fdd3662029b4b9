"""The deployment files (issue 6, "Deployment"), checked without a container engine.

No Docker engine and no Kubernetes cluster run here, so the image is not built and
nothing is applied. What is checked: the compose file, every Kubernetes manifest and
the kustomization parse and hang together (names, ports, mounts, probes, security
context, resources); every BACKFILL_* variable they set is a real setting and the
example env file documents every setting with its true default; every secret
placeholder is one the service refuses; the Dockerfile's stages, user, health check
and commands; the systemd unit's keys. Tools that exist on the machine are used too
(`kubectl kustomize`, `systemd-analyze verify`, `docker compose config` when the
compose plugin is installed); those checks run only where the tool is, and the
file-level checks always run.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

import service.__main__ as service_main
from service.settings import Role, Settings
from service.simulator import TAG_MAP_PATH
from service.simulator.__main__ import _parse_args as parse_simulator_args
from service.simulator.server import NAMESPACE_INDEX, TAG_NODE_IDS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "backfill.env.example"
DOCKERFILE = ROOT / "Dockerfile"
UNIT = DEPLOY / "systemd" / "backfill.service"

PREFIX = "BACKFILL_"
IMAGE_UID = 10001
SERVICE_COMMAND = ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
PLACEHOLDER = "REPLACE_ME"
VALID_KEYS = ",".join(f"{role.value}:{role.value}-key-0123456789abcdef" for role in Role)


# --- helpers ------------------------------------------------------------------------


def _leaf_settings(model: type[BaseModel], prefix: str) -> dict[str, tuple[str, ...]]:
    """Environment variable name -> attribute path, for every leaf setting."""
    names: dict[str, tuple[str, ...]] = {}
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        env = f"{prefix}{field_name.upper()}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub, path in _leaf_settings(annotation, f"{env}__").items():
                names[sub] = (field_name, *path)
        else:
            names[env] = (field_name,)
    return names


SETTINGS = _leaf_settings(Settings, PREFIX)


def _value(settings: Settings, path: tuple[str, ...]) -> Any:
    obj: Any = settings
    for part in path:
        obj = getattr(obj, part)
    return obj


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No BACKFILL_* setting from the surrounding environment leaks into Settings()."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    return monkeypatch


def _env_example_lines() -> list[tuple[bool, str, str]]:
    """(commented out, name, value) for every assignment line of the example."""
    found = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?(BACKFILL_[A-Z0-9_]+)=(.*)", line)
        if match:
            found.append((match.group(1) is not None, match.group(2), match.group(3)))
    return found


def _load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert all(isinstance(doc, dict) for doc in docs), path
    return docs


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _compose_environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _manifests() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: _load_yaml_documents(path)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def _objects(kind: str) -> list[dict[str, Any]]:
    return [doc for docs in _manifests().values() for doc in docs if doc["kind"] == kind]


def _by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _objects(kind)}


def _deployment() -> dict[str, Any]:
    (deployment,) = _objects("Deployment")
    return deployment


def _container() -> dict[str, Any]:
    (container,) = _deployment()["spec"]["template"]["spec"]["containers"]
    return container


def _k8s_env(container: dict[str, Any]) -> dict[str, str]:
    """Every environment variable the container gets, from env and envFrom."""
    configmaps, secrets = _by_name("ConfigMap"), _by_name("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            env.update(secrets[source["secretRef"]["name"]]["stringData"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "")
    return env


def _quantity(text: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match, text
    number, unit = match.groups()
    return float(number) * (units[unit] if unit else 1)


def _dockerfile_stages() -> list[tuple[str, list[str]]]:
    """(FROM line, instruction lines) per stage; continuation lines joined."""
    logical: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[tuple[str, list[str]]] = []
    for line in logical:
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def _instructions(lines: list[str], keyword: str) -> list[str]:
    return [line[len(keyword) :].strip() for line in lines if line.upper().startswith(keyword)]


def _unit() -> dict[str, list[tuple[str, str]]]:
    """The systemd unit as section -> [(key, value)] (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            sections.setdefault(section, [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        sections[section].append((key.strip(), value.strip()))
    return sections


def _unit_values(section: str, key: str) -> list[str]:
    return [v for k, v in _unit()[section] if k == key]


def _assert_settings(names: set[str], where: str) -> None:
    unknown = sorted(name for name in names if name.startswith(PREFIX) and name not in SETTINGS)
    assert not unknown, f"{where} sets variables that are no setting: {unknown}"


def _refused(api_keys: str) -> bool:
    try:
        Settings(api_keys=api_keys)  # type: ignore[arg-type]
    except ValidationError:
        return True
    return False


# --- the env example ----------------------------------------------------------------


def test_settings_are_derived() -> None:
    # The derivation itself: nested models become __ names, lists and scalars leaves.
    assert "BACKFILL_API_KEYS" in SETTINGS
    assert SETTINGS["BACKFILL_PLC__ENDPOINT"] == ("plc", "endpoint")
    assert SETTINGS["BACKFILL_SIM__SPEED"] == ("sim", "speed")
    assert "BACKFILL_PLC" not in SETTINGS


def test_env_example_documents_every_setting_once() -> None:
    names = [name for _, name, _ in _env_example_lines()]
    _assert_settings(set(names), ENV_EXAMPLE.name)
    missing = sorted(set(SETTINGS) - set(names))
    assert not missing, f"{ENV_EXAMPLE.name} does not document {missing}"
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"documented twice: {twice}"


def test_env_example_lines_are_plain_key_value() -> None:
    # One format that docker compose (env_file) and systemd (EnvironmentFile) read alike.
    for line in ENV_EXAMPLE.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        assert re.fullmatch(r"BACKFILL_[A-Z0-9_]+=[^\s\"']+", line), line


def test_env_example_commented_lines_show_the_defaults(clean_env: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    for commented, name, value in _env_example_lines():
        if not commented:
            continue
        path = SETTINGS[name]
        if value == "":
            assert _value(defaults, path) in (None, []), f"{name}: the default is not unset"
            continue
        clean_env.setenv(name, value)
        try:
            assert _value(Settings(), path) == _value(defaults, path), name
        finally:
            clean_env.delenv(name)


def test_env_example_active_lines_are_refused_placeholders() -> None:
    active = {name: value for commented, name, value in _env_example_lines() if not commented}
    assert set(active) == {"BACKFILL_API_KEYS"}
    keys = active["BACKFILL_API_KEYS"]
    assert PLACEHOLDER in keys
    assert {item.split(":")[0] for item in keys.split(",")} == {role.value for role in Role}
    assert _refused(keys)
    # ... while real keys in the same format are accepted.
    assert not _refused(VALID_KEYS)


# --- docker compose ---------------------------------------------------------------


def test_compose_services_and_postgres() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"service", "simulator", "postgres"}
    for name, svc in services.items():
        assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), name
        assert "healthcheck" in svc or name == "service", name
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    volume = postgres["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data"
    assert volume[0] in compose["volumes"], "PostgreSQL data is a named volume"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_compose_service_wiring() -> None:
    compose = _compose()
    services = compose["services"]
    svc = services["service"]
    assert svc["command"] == SERVICE_COMMAND
    assert svc["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "simulator": {"condition": "service_healthy"},
    }
    env = _compose_environment(svc)
    _assert_settings(set(env), "compose service")
    assert env["BACKFILL_DATABASE_URL"].startswith("postgresql+asyncpg://backfill:${")
    assert "@postgres:5432/" in env["BACKFILL_DATABASE_URL"]

    # The simulator's command is one its own CLI accepts, on the port the service uses.
    sim = services["simulator"]
    assert sim["command"][:3] == ["python", "-m", "service.simulator"]
    args = parse_simulator_args(sim["command"][3:])
    assert args.host == "0.0.0.0"
    assert env["BACKFILL_PLC__ENDPOINT"] == f"opc.tcp://simulator:{args.port}"
    # The simulator has no OPC UA security: the file says so explicitly.
    assert env["BACKFILL_PLC__ALLOW_INSECURE"] == "true"

    # The tag map mounted into the service is the simulator's own.
    (mount,) = svc["configs"]
    assert env["BACKFILL_PLC__TAG_MAP"] == mount["target"]
    source = (COMPOSE.parent / compose["configs"][mount["source"]]["file"]).resolve()
    assert source == TAG_MAP_PATH.resolve()


def test_compose_has_no_literal_secrets() -> None:
    compose = _compose()
    svc = compose["services"]["service"]
    assert svc["env_file"], "the API keys come from an env file"
    for name, service in compose["services"].items():
        env = _compose_environment(service)
        assert "BACKFILL_API_KEYS" not in env, name
        for key, value in env.items():
            if "PASSWORD" in key or "KEY" in key:
                assert value.startswith("${"), f"{name}: {key} is a literal"
    # Whatever role:key pairs appear anywhere in the file would be refused.
    for pair in re.findall(r"\b(?:hmi|scada|engineer|admin):[^\s,\"']+", COMPOSE.read_text()):
        assert _refused(pair), pair


def test_simulator_tag_map_matches_its_namespace() -> None:
    tags = tomllib.loads(TAG_MAP_PATH.read_text())["tags"]
    assert tags == TAG_NODE_IDS
    assert all(node.startswith(f"ns={NAMESPACE_INDEX};") for node in tags.values())


def test_docker_compose_config(tmp_path: Path) -> None:
    """`docker compose config` where the compose plugin exists; the YAML-level checks
    above run everywhere (this machine has the docker client without the plugin)."""
    docker = shutil.which("docker")
    available = (
        docker is not None
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        ).returncode
        == 0
    )
    if not available:
        # Still true without the plugin: the file is plain YAML with the expected top level.
        assert set(_compose()) <= {"name", "services", "configs", "volumes", "secrets"} | {
            key for key in _compose() if key.startswith("x-")
        }
        return
    assert docker is not None
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(COMPOSE, deploy / "compose.yaml")
    shutil.copy(ENV_EXAMPLE, deploy / "backfill.env")
    (tmp_path / "service" / "simulator").mkdir(parents=True)
    shutil.copy(TAG_MAP_PATH, tmp_path / "service" / "simulator" / "tags.toml")
    env = {**os.environ, "POSTGRES_PASSWORD": "compose-config-check"}
    result = subprocess.run(
        [docker, "compose", "-f", str(deploy / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- Kubernetes -----------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert set(kustomization["resources"]) == set(_manifests())
    for name, docs in _manifests().items():
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), name
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def test_deployment_is_one_non_root_replica() -> None:
    deployment = _deployment()
    spec = deployment["spec"]
    assert spec["replicas"] == 1, "one writer unless failover is turned on"
    assert spec["strategy"]["type"] == "Recreate", "no overlap of two writers on rollout"
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    container = _container()
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert container["command"] == SERVICE_COMMAND


def test_deployment_probes_and_resources() -> None:
    container = _container()
    (port,) = container["ports"]
    assert port["containerPort"] == 8000
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    resources = container["resources"]
    for kind in ("cpu", "memory"):
        request = _quantity(resources["requests"][kind])
        limit = _quantity(resources["limits"][kind])
        assert 0 < request <= limit, kind
    # Measured: about 125 MiB resident with a pour running (see deployment.yaml).
    assert _quantity(resources["limits"]["memory"]) >= 256 * 2**20


def test_deployment_volumes() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in _container()["volumeMounts"]}
    assert {mount["name"] for mount in mounts.values()} <= set(volumes)
    # The image's working directory and /tmp are writable on a read-only root.
    for path in ("/data", "/tmp"):
        volume = volumes[mounts[path]["name"]]
        assert "emptyDir" in volume or "persistentVolumeClaim" in volume, path
        assert not mounts[path].get("readOnly", False), path
    configmaps, secrets = _by_name("ConfigMap"), _by_name("Secret")
    for volume in volumes.values():
        if "configMap" in volume:
            assert volume["configMap"]["name"] in configmaps
        if "secret" in volume:
            assert volume["secret"]["secretName"] in secrets


def test_deployment_files_are_where_the_settings_point() -> None:
    container = _container()
    env = _k8s_env(container)
    pod = _deployment()["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    configmaps, secrets = _by_name("ConfigMap"), _by_name("Secret")
    files: set[str] = set()
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            keys = configmaps[volume["configMap"]["name"]]["data"]
        elif "secret" in volume:
            keys = secrets[volume["secret"]["secretName"]]["stringData"]
        else:
            continue
        files |= {f"{mount['mountPath']}/{key}" for key in keys}
    for name in (
        "BACKFILL_PLC__TAG_MAP",
        "BACKFILL_PLC__CERTIFICATE",
        "BACKFILL_PLC__PRIVATE_KEY",
        "BACKFILL_PLC__SERVER_CERTIFICATE",
    ):
        assert env[name] in files, name


def test_deployment_environment_is_settings(clean_env: pytest.MonkeyPatch) -> None:
    env = _k8s_env(_container())
    _assert_settings(set(env), "deploy/k8s")
    assert {"BACKFILL_API_KEYS", "BACKFILL_DATABASE_URL", "BACKFILL_PLC__ENDPOINT"} <= set(env)
    # The non-secret settings form a valid production configuration (SignAndEncrypt
    # with certificate, key and a trusted server certificate) ...
    for name, value in env.items():
        clean_env.setenv(name, value)
    clean_env.setenv("BACKFILL_API_KEYS", VALID_KEYS)
    settings = Settings()
    assert settings.plc.security_mode.value == "SignAndEncrypt"
    assert not settings.plc.allow_untrusted_server
    assert not settings.plc.allow_insecure
    # ... and the Secret template's API keys stop the service from starting.
    clean_env.setenv("BACKFILL_API_KEYS", env["BACKFILL_API_KEYS"])
    with pytest.raises(ValidationError, match="placeholder or shorter"):
        Settings()


def test_secrets_are_placeholders() -> None:
    secrets = _by_name("Secret")
    assert {"backfill-api-keys", "backfill-database", "backfill-opcua"} <= set(secrets)
    for name, secret in secrets.items():
        assert "data" not in secret, f"{name}: templates use stringData only"
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER in value, f"{name}/{key}"
            assert "-----BEGIN" not in value, f"{name}/{key}"
    assert _refused(secrets["backfill-api-keys"]["stringData"]["BACKFILL_API_KEYS"])


def test_tag_map_configmap_is_the_simulator_map() -> None:
    data = _by_name("ConfigMap")["backfill-tag-map"]["data"]
    assert tomllib.loads(data["tags.toml"]) == tomllib.loads(TAG_MAP_PATH.read_text())


def test_service_selects_the_pods() -> None:
    (svc,) = _objects("Service")
    labels = _deployment()["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    names = {port["name"] for port in _container()["ports"]}
    assert {port["targetPort"] for port in svc["spec"]["ports"]} <= names


def test_kubectl_kustomize_builds() -> None:
    """`kubectl kustomize` (offline) where kubectl exists; the checks above run anyway."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = sorted(doc["kind"] for doc in built)
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "Secret",
        "Secret",
        "Secret",
        "Service",
    ]
    (deployment,) = [doc for doc in built if doc["kind"] == "Deployment"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"\S+:\S+", image), image


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_without_build_tools() -> None:
    stages = _dockerfile_stages()
    assert len(stages) == 2
    (builder_from, builder), (final_from, final) = stages
    assert re.fullmatch(r"FROM python:3\.11-slim AS builder", builder_from, re.IGNORECASE)
    assert re.match(r"FROM python:3\.11-slim\b", final_from, re.IGNORECASE)
    assert any("pip wheel" in line for line in builder)
    final_text = "\n".join(final)
    for tool in ("gcc", "build-essential", "apt-get install", "pip wheel", "make "):
        assert tool not in final_text, tool
    copies = _instructions(final, "COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"], "only the venv is copied"


def test_dockerfile_runtime_settings() -> None:
    (_, final) = _dockerfile_stages()[-1]
    (user,) = _instructions(final, "USER")
    assert user.split(":")[0] == str(IMAGE_UID)
    assert _instructions(final, "WORKDIR") == ["/data"]
    assert _instructions(final, "EXPOSE") == ["8000"]
    env_names = set(re.findall(r"\b(BACKFILL_[A-Z0-9_]+)=", "\n".join(_instructions(final, "ENV"))))
    _assert_settings(env_names, "Dockerfile")
    assert "BACKFILL_DATABASE_URL=sqlite+aiosqlite:////data/backfill.db" in "\n".join(final)
    (cmd,) = _instructions(final, "CMD")
    assert yaml.safe_load(cmd) == SERVICE_COMMAND


def test_dockerfile_healthcheck_is_python_against_healthz() -> None:
    (_, final) = _dockerfile_stages()[-1]
    (check,) = _instructions(final, "HEALTHCHECK")
    exec_form = check[check.index("CMD") + len("CMD") :].strip()
    argv = yaml.safe_load(exec_form)
    assert argv[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")


def test_service_command_parses(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """The image's command reaches the server with host 0.0.0.0 and port 8000."""
    seen: dict[str, Any] = {}

    async def serve(settings: Settings, host: str, port: int) -> int:
        seen.update(settings=settings, host=host, port=port)
        return 0

    clean_env.setenv("BACKFILL_API_KEYS", VALID_KEYS)
    clean_env.setattr(service_main, "serve", serve)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert service_main.main(SERVICE_COMMAND[3:]) == 0
    finally:  # main() configures the root logger for the process; undo it
        root.handlers[:] = handlers
        root.setLevel(level)
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 8000)
    assert isinstance(seen["settings"], Settings)


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "tests", "*.db", ".env", "*.env", "backfill-dev-keys.txt"} <= ignored
    assert not ignored & {"service", "pyproject.toml", "README.md"}


# --- systemd ------------------------------------------------------------------------------


def test_systemd_unit() -> None:
    service = dict(_unit()["Service"])
    assert service["User"] not in ("", "root", "0")
    assert service["EnvironmentFile"] == "/etc/backfill/backfill.env"
    assert service["WorkingDirectory"] == "/var/lib/backfill"
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/bin/python") and argv[1:3] == ["-m", "service"]
    assert service["Restart"] == "on-failure"
    assert "/var/lib/backfill" in service["ReadWritePaths"].split()
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    for value in _unit_values("Service", "Environment"):
        _assert_settings({item.split("=")[0] for item in shlex.split(value)}, UNIT.name)
    assert _unit_values("Install", "WantedBy") == ["multi-user.target"]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` where it exists, with ExecStart pointed at this
    interpreter (the unit's /opt/backfill venv is not installed here)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    (exec_start,) = _unit_values("Service", "ExecStart")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(shlex.split(exec_start)[0], sys.executable))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    ours = [line for line in result.stderr.splitlines() if str(unit) in line]
    assert not ours, "\n".join(ours)
