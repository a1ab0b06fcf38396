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

    from fastapi.testclient import TestClient

    client = TestClient(create_app(Settings(), lambda: None))  # no lifespan: no model loaded
    codes = {p: client.get(p).status_code for p in ("/healthz", "/readyz", "/metrics", "/v1/analyze")}
    assert codes == {"/healthz": 200, "/readyz": 503, "/metrics": 200, "/v1/analyze": 405}


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
    """The manifests run the service: each ATTUNE_ variable is one of its settings."""
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
    assert not [w for w, _ in final if w == "ENTRYPOINT"]  # compose runs `attune run` in it too
    argv = [json.loads(r) for w, r in final if w == "CMD"][-1]
    assert argv[:2] == ["cmt", "serve"], argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    env = " ".join(r for w, r in final if w == "ENV")
    port = int(re.search(r"ATTUNE_SERVE_PORT=(\d+)", env).group(1))  # the port `cmt serve` takes
    exposed = {int(p) for w, r in final if w == "EXPOSE" for p in r.split()}
    assert port in exposed


def test_torch_comes_from_the_cpu_index_before_the_project(dockerfile):
    args = _arg_defaults(dockerfile)
    build = next(s for s, (w, r) in zip(_stages(dockerfile), [x for x in dockerfile if x[0] == "FROM"])
                 if r.endswith("AS build"))
    runs = [r for w, r in build if w == "RUN"]
    torch_at = [i for i, r in enumerate(runs) if re.search(r"pip install .*TORCH_SPEC", r)]
    project_at = [i for i, r in enumerate(runs) if 'uv pip install' in r and '".[${EXTRAS}]"' in r]
    assert torch_at and project_at and torch_at[0] < project_at[0]
    assert '--extra-index-url "$TORCH_INDEX"' in runs[torch_at[0]]
    assert args["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"
    assert "cmt" in args["EXTRAS"].split(",")
    # openai-whisper's triton is left out, as `make run` leaves it out
    assert '--overrides "${OVERRIDES}"' in runs[project_at[0]]
    assert args["OVERRIDES"] == "deploy/no-triton.txt"
    # the same torch as the Makefile, which the tests run on
    make = (REPO / "Makefile").read_text()
    assert re.search(r"TORCH_SPEC \?= (\S+)", make).group(1) == args["TORCH_SPEC"]


def test_image_is_multi_stage_slim_non_root_and_offline(dockerfile):
    froms = [r for w, r in dockerfile if w == "FROM"]
    args = _arg_defaults(dockerfile[: next(i for i, (w, _) in enumerate(dockerfile) if w == "FROM")])
    assert len(froms) >= 3
    assert _expand(froms[0].split()[0], args) == "python:3.11-slim"  # BASE_IMAGE's default
    assert all(f.split()[0] == "base" for f in froms[1:])  # build and runtime share the base
    final = _stages(dockerfile)[-1]
    user = [r for w, r in final if w == "USER"][-1].split(":")[0]
    assert user not in ("0", "root")
    env = " ".join(r for w, r in final if w == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "ATTUNE_HOME=/tmp/attune" in env
    runs = " ".join(r for w, r in final if w == "RUN")
    assert "libsndfile1" in runs and "ffmpeg" not in runs
    copies = [r for w, r in final if w == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]  # no build certificates, no sources


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops `path`: the last pattern matching it or a folder above wins."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    dropped = False
    for p in patterns:
        neg = p.startswith("!")
        pat = p.lstrip("!").strip("/")
        if any(fnmatch.fnmatch(x, pat) for x in prefixes):
            dropped = not neg
    return dropped


def test_dockerignore_keeps_what_the_image_copies(dockerfile):
    patterns = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert ".venv" in patterns and ".git" in patterns
    assert _ignored("deploy/secrets/db_password", patterns) and _ignored("tests/x.py", patterns)
    sources = [s for w, r in dockerfile if w == "COPY" and "--from" not in r
               for s in r.split()[:-1]]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: not in the repository"
        assert not _ignored(src, patterns), f".dockerignore drops {src} that the Dockerfile copies"


# ------------------------------------------------------------------ dependencies and install
PARTS = ("cmt", "tutor", "ui")
# Declared but never imported by name, each for a reason.
USED_WITHOUT_IMPORT = {
    "python-multipart": "FastAPI parses multipart forms with it",
    "psycopg": "SQLAlchemy's PostgreSQL driver, chosen by the database URL",
    "redis": "the limits library's shared storage, chosen by its URL",
    "langchain-openai": "a chat model provider, loaded by init_chat_model from ATTUNE_LLM",
    "langchain-ollama": "a chat model provider, loaded by init_chat_model from ATTUNE_LLM",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.match(r"[A-Za-z0-9._-]+", req).group(0))


@pytest.fixture(scope="module")
def project() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _third_party_imports(part: str) -> dict[str, set[str]]:
    """{top-level module: {"module"|"lazy"}} imported by the files of `part`."""
    import ast
    import sys

    found: dict[str, set[str]] = {}
    for path in (REPO / part).rglob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in (*PARTS, "__future__", "attune_data"):
                    continue
                found.setdefault(top, set()).add("module" if id(node) in top_level else "lazy")
    return found


def test_every_import_is_declared_where_its_part_is_installed(project):
    """Module-level imports of tutor/ and ui/ come from the base install, cmt's from base + the
    cmt extra; imports inside functions (optional paths) from any extra."""
    import importlib.metadata

    dists = {k: {_norm(d) for d in v} for k, v in importlib.metadata.packages_distributions().items()}
    extras = project["optional-dependencies"]
    base = {_requirement_name(r) for r in project["dependencies"]}
    anywhere = base | {_requirement_name(r) for reqs in extras.values() for r in reqs}
    problems = []
    for part in PARTS:
        allowed = base | ({_requirement_name(r) for r in extras["cmt"]} if part == "cmt" else set())
        for module, how in sorted(_third_party_imports(part).items()):
            providers = dists.get(module)
            if not providers:
                problems.append(f"{part}: {module} is not installed here to check")
            elif "module" in how and not providers & allowed:
                problems.append(f"{part} imports {module} at module level: "
                                f"{sorted(providers)} is not in its install")
            elif not providers & anywhere:
                problems.append(f"{part} imports {module}: {sorted(providers)} is not declared")
    assert not problems, "\n".join(problems)


def test_every_runtime_dependency_is_imported(project):
    import importlib.metadata

    dists = importlib.metadata.packages_distributions()
    imported = {_norm(d) for part in PARTS for m in _third_party_imports(part)
                for d in dists.get(m, [])}
    extras = project["optional-dependencies"]
    declared = {_requirement_name(r) for r in project["dependencies"]} | {
        _requirement_name(r) for name, reqs in extras.items() if name != "dev" for r in reqs}
    unused = declared - imported - set(USED_WITHOUT_IMPORT)
    assert not unused, f"declared but imported nowhere in {PARTS}: {sorted(unused)}"


def test_weight_packages_are_pinned_exactly(project):
    from cmt.model.weights import PINS

    cmt = project["optional-dependencies"]["cmt"]
    for package, pin in PINS.items():
        assert f"{package}=={pin.version}" in cmt, package


def test_a_wheel_carries_the_data_and_an_install_finds_the_lessons(tmp_path):
    """data/ ships as the package attune_data; installed (not from the checkout), settings
    find it there and the lesson packs load."""
    import subprocess
    import sys
    import zipfile

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(tmp_path / "dist"), str(REPO)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "No module named pip" in r.stderr:
        pytest.skip("no pip in this interpreter")
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("attune-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.removeprefix("attune_data/") for n in names if n.startswith("attune_data/")}
    in_repo = {str(p.relative_to(REPO / "data")) for p in (REPO / "data").rglob("*") if p.is_file()}
    assert in_repo <= shipped
    assert any(n.startswith("cmt/checkpoints/") for n in names)

    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)  # what pip install puts in site-packages
    probe = ("from tutor.settings import REPO_DATA_DIR; from tutor.curriculum import load_packs; "
             "print(REPO_DATA_DIR); print(sorted(load_packs(REPO_DATA_DIR / 'lessons')))")
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, env={"PYTHONPATH": str(target), "PATH": "/usr/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    data_dir, packs = r.stdout.splitlines()[:2]
    assert Path(data_dir) == target / "attune_data"
    assert "fractions" in packs


def _make_recipe(target: str) -> str:
    make = (REPO / "Makefile").read_text()
    m = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", make, re.M)
    return m.group(1)


def test_make_run_installs_the_app_without_test_tools_or_triton():
    make = (REPO / "Makefile").read_text()
    run = _make_recipe("$(VENV)/.installed-run")
    assert '".[cmt]"' in run and "dev" not in run
    assert "UV_INSTALL" in run and "--overrides deploy/no-triton.txt" in make
    assert re.search(r"^run: install\b", make, re.M)
    test = _make_recipe("$(VENV)/.installed-test")
    assert '".[cmt,dev]"' in test
    assert re.search(r"^test: install-test\b", make, re.M)
    overrides = (DEPLOY / "no-triton.txt").read_text()
    assert re.search(r'^triton ; sys_platform == "never"$', overrides, re.M)


def test_the_container_test_is_deselected_by_default_and_has_its_target(project):
    import tomllib

    pytest_ini = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "not container" in pytest_ini["addopts"]
    assert any(m.startswith("container:") for m in pytest_ini["markers"])
    assert "-m container tests/test_container.py" in _make_recipe("test-container")
    assert "make test " in (REPO / ".ci" / "run").read_text()  # CI: the default selection


# ------------------------------------------------------------------ the compose stack
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_the_app_the_service_and_postgres_with_health_checks(compose, dockerfile):
    services = compose["services"]
    assert set(services) == {"db", "cmt", "app"}
    assert "healthcheck" in services["db"] and "healthcheck" in services["app"]
    # the cmt service relies on the image's HEALTHCHECK (/readyz on ATTUNE_SERVE_PORT)
    final = _stages(dockerfile)[-1]
    assert any(w == "HEALTHCHECK" and "/readyz" in r and "ATTUNE_SERVE_PORT" in r for w, r in final)
    assert services["app"]["depends_on"] == {"db": {"condition": "service_healthy"},
                                             "cmt": {"condition": "service_healthy"}}
    assert services["cmt"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_compose_runs_hardened_on_the_host_network_with_file_secrets(compose):
    services = compose["services"]
    for name in ("cmt", "app"):
        s = services[name]
        assert s["read_only"] is True and s["tmpfs"] == ["/tmp"] and s["cap_drop"] == ["ALL"]
    assert all(s["network_mode"] == "host" for s in services.values())
    made = re.search(r"for name in ([\w ]+); do", (DEPLOY / "make-secrets.sh").read_text())
    assert set(compose["secrets"]) == set(made.group(1).split())
    for name, secret in compose["secrets"].items():
        assert secret["file"] == f"./secrets/{name}"
    assert services["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert "/var/lib/postgresql/data" in services["db"]["volumes"][0]
    # secrets reach the processes through files, never through compose's environment
    env = " ".join(str(v) for s in services.values() for v in s.get("environment", {}).values())
    assert "PASSWORD=" not in env and "API_KEY" not in env
    assert "/run/secrets/cmt_api_key" in " ".join(services["app"]["command"])
    assert "/run/secrets/cmt_api_key" in " ".join(services["cmt"]["command"])


def test_compose_settings_are_real_settings(compose, monkeypatch):
    """Each ATTUNE_ variable of the compose stack is a setting of the process it is given to:
    the service's (cmt.settings) or the app's (tutor.settings)."""
    from cmt.settings import Settings as ServiceSettings
    from tutor.settings import Settings as AppSettings

    for service, settings in (("cmt", ServiceSettings), ("app", AppSettings)):
        for var in compose["services"][service].get("environment", {}):
            if var.startswith("ATTUNE_") and var != "ATTUNE_DB_PORT":  # the URL's port, see command
                assert var.removeprefix("ATTUNE_").lower() in settings.model_fields, (service, var)


def test_compose_file_is_valid_for_docker_compose():
    import shutil
    import subprocess

    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    r = subprocess.run(["docker-compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_haproxy_config_is_valid():
    import os
    import shutil
    import subprocess

    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    env = dict(os.environ, LB_HOST="127.0.0.1", LB_PORT="18100", REPLICA_A="127.0.0.1:18101",
               REPLICA_B="127.0.0.1:18102")
    r = subprocess.run(["haproxy", "-c", "-f", str(DEPLOY / "haproxy.cfg")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
