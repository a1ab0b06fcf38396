"""deploy/: the Dockerfile and the Kubernetes manifests, checked offline.

Every manifest is validated against the Kubernetes JSON schemas that the
`kubernetes-validate` package ships (strict: unknown fields fail), for the oldest and
the newest Kubernetes version it covers. The structural tests check what the schemas
cannot: that the pieces point at each other and at the real service.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
OLDEST_K8S = "1.25"  # autoscaling/v2 and policy/v1 are GA well before this


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _one(path: Path, kind: str) -> dict:
    (doc,) = [d for d in _docs(path) if d["kind"] == kind]
    return doc


@pytest.fixture(scope="module")
def deployment() -> dict:
    return _one(K8S / "deployment.yaml", "Deployment")


@pytest.fixture(scope="module")
def gpu_deployment() -> dict:
    return _one(K8S / "gpu" / "deployment-gpu.yaml", "Deployment")


def _container(dep: dict) -> dict:
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def _env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def _port_number(c: dict, port: int | str) -> int:
    """A probe's or Service's port (a number or the name of a container port) as a number."""
    if isinstance(port, int):
        return port
    by_name = {p["name"]: p["containerPort"] for p in c["ports"] if "name" in p}
    assert port in by_name, f"port {port!r} is not a named port of container {c['name']}"
    return by_name[port]


# ------------------------------------------------------------------ schemas (offline)
def _validator():
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="schema validation needs `pip install kubernetes-validate` (ships the schemas)")
    return kv


def test_manifest_files_are_all_found():
    names = {p.relative_to(K8S).as_posix() for p in MANIFESTS}
    assert {"deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "secret.example.yaml",
            "gpu/deployment-gpu.yaml"} <= names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(K8S).as_posix())
def test_manifest_is_valid_against_the_kubernetes_schema(path):
    kv = _validator()
    docs = _docs(path)
    assert docs, f"{path} holds no resource"
    for version in (OLDEST_K8S, kv.latest_version()):
        for doc in docs:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                where = ".".join(str(x) for x in e.path)
                pytest.fail(f"{path.name}: {doc['kind']} invalid for Kubernetes {version} at "
                            f"{where or '<root>'}: {e.message}")


def test_schema_validation_catches_a_broken_deployment(deployment):
    """The check is live: a misspelt field and a wrong type both fail."""
    kv = _validator()
    bad = copy.deepcopy(deployment)
    _container(bad)["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, kv.latest_version(), strict=True)
    bad = copy.deepcopy(deployment)
    _container(bad)["ports"][0]["containerPort"] = "8100"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, kv.latest_version(), strict=True)


# ------------------------------------------------------------------ the Deployment
@pytest.mark.parametrize("variant", ["deployment", "gpu_deployment"])
def test_probes_point_at_the_service_endpoints_on_the_container_port(variant, request):
    dep = request.getfixturevalue(variant)
    c = _container(dep)
    (port,) = [p["containerPort"] for p in c["ports"]]
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
    for probe, path in expected.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, f"{probe} should GET {path}"
        assert _port_number(c, get["port"]) == port, f"{probe} is not on the container port"
    # uvicorn listens only after the model has loaded (~10-20 s): the startup probe must
    # allow well over that before the liveness probe may restart the pod.
    s = c["startupProbe"]
    assert s.get("initialDelaySeconds", 0) + s["periodSeconds"] * s["failureThreshold"] >= 60
    assert c["livenessProbe"]["failureThreshold"] >= 3
    # the service answers /healthz, /readyz and /metrics on these paths
    from cmt.serve.app import create_app
    from cmt.settings import Settings

    routes = {getattr(r, "path", None) for r in create_app(Settings(), lambda: None).routes}
    assert {"/healthz", "/readyz", "/metrics", "/v1/analyze"} <= routes


def test_container_runs_cmt_serve_on_all_interfaces_on_its_port(deployment):
    c = _container(deployment)
    argv = c.get("command", []) + c.get("args", [])
    assert argv[:2] == ["cmt", "serve"], argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    (port,) = [p["containerPort"] for p in c["ports"]]
    assert int(argv[argv.index("--port") + 1]) == port
    # the flags are the real CLI's
    import typer.main

    from cmt.cli import app

    serve = typer.main.get_command(app).commands["serve"]
    flags = {o for p in serve.params for o in getattr(p, "opts", [])}
    assert {"--host", "--port"} <= flags


def test_api_keys_come_from_the_secret_in_the_format_settings_reads(deployment, monkeypatch):
    env = _env(_container(deployment))
    ref = env["ATTUNE_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("attune-cmt", "api-keys")
    assert "value" not in env["ATTUNE_API_KEYS"], "the key must not be written into the manifest"
    secret = _one(K8S / "secret.example.yaml", "Secret")
    assert secret["metadata"]["name"] == ref["name"]
    example = secret["stringData"][ref["key"]]
    assert isinstance(json.loads(example), list)
    # what the service does with it
    from cmt.settings import Settings

    monkeypatch.setenv("ATTUNE_API_KEYS", example)
    keys = [k.get_secret_value() for k in Settings(_env_file=None).api_keys]
    assert keys == json.loads(example)
    assert secret["stringData"]["tutor-api-key"] in keys


def test_every_attune_variable_is_a_setting(deployment, gpu_deployment):
    from cmt.settings import Settings

    for dep in (deployment, gpu_deployment):
        for name in _env(_container(dep)):
            if name.startswith("ATTUNE_"):
                field = name.removeprefix("ATTUNE_").lower()
                assert field in Settings.model_fields, f"{name} is not a setting (cmt/settings.py)"


def test_runs_as_non_root_with_a_read_only_root_and_a_writable_home(deployment):
    pod = deployment["spec"]["template"]["spec"]
    c = _container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    home = _env(c)["ATTUNE_HOME"]["value"]
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = [m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty_dirs]
    assert any(home == m or home.startswith(m.rstrip("/") + "/") for m in mounts), \
        f"ATTUNE_HOME={home} is not on an emptyDir"


def test_resources_and_prometheus_scrape(deployment):
    c = _container(deployment)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{kind} needs cpu and memory"
    ann = deployment["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/path"] == "/metrics"
    assert int(ann["prometheus.io/port"]) == c["ports"][0]["containerPort"]


def test_gpu_variant_differs_only_in_the_gpu_settings(deployment, gpu_deployment):
    g = _container(gpu_deployment)
    assert g["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert _env(g)["ATTUNE_DEVICE"]["value"] == "cuda"
    assert _env(_container(deployment))["ATTUNE_DEVICE"]["value"] == "cpu"
    pod = gpu_deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert gpu_deployment["metadata"]["name"] == deployment["metadata"]["name"], \
        "same name, so the Service, HPA and PDB apply to it unchanged"

    def strip(dep: dict) -> dict:
        dep = copy.deepcopy(dep)
        tpl = dep["spec"]["template"]
        tpl["metadata"]["labels"].pop("app.kubernetes.io/variant", None)
        for key in ("nodeSelector", "tolerations"):
            tpl["spec"].pop(key, None)
        c = _container(dep)
        for key in ("image", "resources"):
            c.pop(key)
        c["env"] = [e for e in c["env"]
                    if e["name"] != "ATTUNE_DEVICE" and not e["name"].startswith("NVIDIA_")]
        return dep

    assert strip(gpu_deployment) == strip(deployment), \
        "deployment-gpu.yaml drifted from deployment.yaml beyond image, device, resources, nodes"


# ------------------------------------------------------------------ Service, HPA, PDB, kustomize
def test_service_routes_to_the_container_port(deployment):
    svc = _one(K8S / "service.yaml", "Service")
    c = _container(deployment)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items(), "the Service selects no pod"
    (p,) = svc["spec"]["ports"]
    assert _port_number(c, p["targetPort"]) == c["ports"][0]["containerPort"]
    assert p["port"] == 8100, "the tutor's ATTUNE_CMT_URL=http://attune-cmt:8100 (docs/deploy.md)"


def test_hpa_scales_the_deployment_on_cpu(deployment):
    hpa = _one(K8S / "hpa.yaml", "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == \
        ("apps/v1", "Deployment", deployment["metadata"]["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "cpu" in _container(deployment)["resources"]["requests"], "utilization needs a request"
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_pdb_covers_the_pods(deployment):
    pdb = _one(K8S / "pdb.yaml", "PodDisruptionBudget")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _one(K8S / "hpa.yaml", "HorizontalPodAutoscaler")
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "drains must be possible"


def test_kustomization_lists_the_base_without_the_example_secret(deployment):
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "namespace" not in kust
    res = kust["resources"]
    assert set(res) == {"deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"}
    assert all((K8S / r).is_file() for r in res)
    image = _container(deployment)["image"].split(":")[0]
    assert image in {i["name"] for i in kust.get("images", [])}


# ------------------------------------------------------------------ Dockerfile
def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _instructions(DOCKERFILE.read_text())


def _stages(instrs):
    stages, current = [], None
    for word, rest in instrs:
        if word == "FROM":
            current = []
            stages.append(current)
        elif current is not None:
            current.append((word, rest))
    return stages


def _arg_defaults(instrs) -> dict[str, str]:
    args = {}
    for word, rest in instrs:
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value.strip('"')
    return args


def _expand(s: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), s)


def test_image_runs_cmt_serve_on_all_interfaces(dockerfile):
    final = _stages(dockerfile)[-1]
    entry = [json.loads(r) for w, r in final if w == "ENTRYPOINT"][-1]
    cmd = [json.loads(r) for w, r in final if w == "CMD"][-1]
    argv = entry + cmd
    assert argv[:2] == ["cmt", "serve"], argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    exposed = {int(p) for w, r in final if w == "EXPOSE" for p in r.split()}
    assert int(argv[argv.index("--port") + 1]) in exposed


def test_torch_comes_from_the_cpu_index_before_the_project(dockerfile):
    args = _arg_defaults(dockerfile)
    runs = [_expand(r, args) for w, r in _stages(dockerfile)[0] if w == "RUN"]
    torch_at = [i for i, r in enumerate(runs) if re.search(r"pip install \S*torch==", r)]
    project_at = [i for i, r in enumerate(runs) if '".[cmt]"' in r]
    assert torch_at and project_at and torch_at[0] <= project_at[0]
    (cmd,) = [c for c in runs[torch_at[0]].split("&&") if "torch==" in c]
    words = shlex.split(cmd)
    assert words[:2] == ["pip", "install"] and words[2].startswith("torch==")
    index = words[words.index("--extra-index-url") + 1]
    assert index == "https://download.pytorch.org/whl/cpu"
    # the same torch as the Makefile, which the tests run on
    make = (REPO / "Makefile").read_text()
    assert re.search(r"TORCH_SPEC \?= (\S+)", make).group(1) == args["TORCH_SPEC"]


def test_image_is_multi_stage_slim_non_root_and_offline(dockerfile):
    froms = [r for w, r in dockerfile if w == "FROM"]
    args = _arg_defaults(dockerfile[: next(i for i, (w, _) in enumerate(dockerfile) if w == "FROM")])
    assert len(froms) >= 2
    assert all(_expand(f.split()[0], args) == "python:3.11-slim" for f in froms)
    final = _stages(dockerfile)[-1]
    user = [r for w, r in final if w == "USER"][-1].split(":")[0]
    assert user not in ("0", "root")
    env = " ".join(r for w, r in final if w == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "ATTUNE_HOME=/tmp/attune" in env
    runs = " ".join(r for w, r in final if w == "RUN")
    assert "libsndfile1" in runs and "ffmpeg" not in runs
    assert any(w == "COPY" and "--from=build" in r for w, r in final)


def test_dockerignore_keeps_what_the_image_copies(dockerfile):
    patterns = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert ".venv" in patterns and ".git" in patterns
    sources = [s for w, r in dockerfile if w == "COPY" and "--from" not in r
               for s in r.split()[:-1]]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: not in the repository"
        hit = [p for p in patterns if fnmatch.fnmatch(src, p.lstrip("/"))]
        assert not hit, f".dockerignore drops {src} (pattern {hit}) that the Dockerfile copies"
