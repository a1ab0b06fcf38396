"""The service image, built and run: `make test-container` (marker `container`, deselected
by default).

Makes a Debian base where none is named (debootstrap, Debian's mirror), builds
deploy/Dockerfile, runs the image as the manifests do (non-root, read-only root filesystem, all
capabilities dropped, /tmp a tmpfs, host networking on 127.0.0.1), and checks /readyz and a
text, a face and a speech answer. It stops and removes the container it started, and a Docker
engine it had to start. Where no engine can start (no docker, not root, no dockerd) it skips,
saying why.

Settings (environment):
  ATTUNE_TEST_BASE_IMAGE  the base (default: local/debian:bookworm, made with debootstrap when
                          missing; python:3.11-slim needs a registry)
  ATTUNE_TEST_IMAGE       the tag built (default attune:container-test)
  ATTUNE_TEST_PORT        the port the container listens on (default 18790)
A torch wheel in deploy/wheels/ is installed instead of reaching the PyTorch CPU index.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]  # an uncached build: minutes

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
BASE = os.environ.get("ATTUNE_TEST_BASE_IMAGE", "local/debian:bookworm")
IMAGE = os.environ.get("ATTUNE_TEST_IMAGE", "attune:container-test")
PORT = int(os.environ.get("ATTUNE_TEST_PORT", "18790"))
KEY = "container-test-key"
BUILD_TIMEOUT_S = 3600


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


def engine_up() -> bool:
    try:
        return docker("info", timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A reachable Docker engine: the running one, or dockerd started here (and stopped after)."""
    if shutil.which("docker") is None:
        pytest.skip("no docker command (apt-get install docker.io)")
    started = None
    if not engine_up():
        if shutil.which("dockerd") is None or os.geteuid() != 0:
            pytest.skip("no Docker engine running, and none can be started here "
                        "(dockerd needs root)")
        log = open(tmp_path_factory.mktemp("dockerd") / "dockerd.log", "w")  # noqa: SIM115
        started = subprocess.Popen(["dockerd", "--bridge=none", "--iptables=false"],
                                   stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not engine_up() and time.monotonic() < deadline and started.poll() is None:
            time.sleep(1)
        if not engine_up():
            started.terminate()
            started.wait(30)
            pytest.skip(f"dockerd would not start (see {log.name})")
    yield
    if started is not None:
        started.terminate()
        started.wait(60)


@pytest.fixture(scope="module")
def base_image(engine, tmp_path_factory):
    """The base image: present, or (for local/debian:*) made with debootstrap."""
    if docker("image", "inspect", BASE, check=False).returncode == 0:
        return BASE
    if not BASE.startswith("local/debian:"):
        pytest.skip(f"base image {BASE} is not here and no registry is assumed")
    if shutil.which("debootstrap") is None:
        pytest.skip("no base image and no debootstrap to make one (apt-get install debootstrap)")
    root = tmp_path_factory.mktemp("rootfs")
    suite = BASE.split(":", 1)[1]
    subprocess.run(["debootstrap", "--variant=minbase", suite, str(root),
                    "http://deb.debian.org/debian"], check=True, capture_output=True, timeout=1800)
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-", BASE], stdin=tar.stdout, check=True,
                   capture_output=True, timeout=600)
    tar.wait()
    shutil.rmtree(root, ignore_errors=True)
    return BASE


@pytest.fixture(scope="module")
def image(base_image):
    args = ["build", "--network", "host", "-f", "deploy/Dockerfile", "-t", IMAGE,
            "--build-arg", f"BASE_IMAGE={base_image}"]
    if any((REPO / "deploy" / "wheels").glob("torch-*.whl")):
        args += ["--build-arg", "TORCH_INDEX="]  # the wheel beside the Dockerfile, no index
    start = time.monotonic()
    r = subprocess.run(["docker", *args, "."], cwd=REPO, capture_output=True, text=True,
                       timeout=BUILD_TIMEOUT_S, env=dict(os.environ, DOCKER_BUILDKIT="0"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    size = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout)
    print(f"\nimage {IMAGE}: built in {time.monotonic() - start:.0f} s, {size / 1e9:.2f} GB")
    return IMAGE


@pytest.fixture(scope="module")
def container(image):
    name = f"attune-container-test-{os.getpid()}"
    docker("run", "-d", "--rm", "--name", name, "--network", "host", "--read-only",
           "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
           "-e", f"ATTUNE_SERVE_PORT={PORT}", "-e", f'ATTUNE_API_KEYS=["{KEY}"]',
           image, "cmt", "serve", "--host", "127.0.0.1")
    url = f"http://127.0.0.1:{PORT}"
    try:
        start, ready = time.monotonic(), None
        while time.monotonic() - start < 300:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                    ready = json.loads(r.read())
                    break
            except (OSError, ValueError):
                if docker("inspect", name, check=False).returncode != 0:
                    break  # the container is gone
                time.sleep(1)
        logs = docker("logs", name, check=False)
        assert ready is not None, f"not ready: {logs.stdout[-2000:]}{logs.stderr[-2000:]}"
        print(f"\nready in {time.monotonic() - start:.0f} s: {ready}")
        yield name, url
    finally:
        docker("rm", "-f", name, check=False)


def analyze(url: str, **body) -> dict:
    req = urllib.request.Request(f"{url}/v1/analyze", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "X-API-Key": KEY})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        return json.loads(r.read())


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_it_runs_as_the_manifests_demand(container):
    name, _ = container
    assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
    assert docker("inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", name).stdout.strip() == "true"
    wrote = docker("exec", name, "touch", "/opt/venv/x", check=False)
    assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr


def test_it_refuses_a_request_without_the_key(container):
    _, url = container
    req = urllib.request.Request(f"{url}/v1/analyze", data=b'{"text": "hi"}',
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 401


def test_a_text_answer(container):
    r = analyze(container[1], text="I am so happy, I finally understand fractions!")
    assert set(r["modalities"]) == {"text"}
    assert r["label"] == "joy"


def test_a_face_answer(container):
    r = analyze(container[1], image_b64=b64(FIXTURES / "faces" / "Tiger_Woods_0020.jpg"))
    assert set(r["modalities"]) == {"face"}
    assert r["face_box"] is not None  # a face was found in the photo


def test_a_speech_answer(container):
    r = analyze(container[1], audio_b64=b64(FIXTURES / "audio" / "so_frustrating_16k.flac"))
    assert "speech" in r["modalities"]
    assert "frustrating" in r["transcript"].lower()
