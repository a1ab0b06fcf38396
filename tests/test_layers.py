"""The layers hold: the contracts in pyproject.toml's [tool.importlinter], checked on the
imports the code has (every `import`, at module level or inside a function)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_layer_contracts_are_kept(capsys, monkeypatch):
    from importlinter.cli import lint_imports

    monkeypatch.chdir(REPO)
    code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["id"] for c in contracts} == {"model", "tutor", "ui"}
    assert out.count(" KEPT") == len(contracts)


def test_a_broken_layer_is_caught(tmp_path, capsys, monkeypatch):
    """The check sees a violation: cmt.model importing training code is reported."""
    from importlinter.cli import lint_imports

    config = tmp_path / "layers.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["cmt"]\n\n'
                      '[[tool.importlinter.contracts]]\nname = "training never imports the model"\n'
                      'type = "forbidden"\nsource_modules = ["cmt.training"]\n'
                      'forbidden_modules = ["cmt.model"]\n')
    monkeypatch.chdir(REPO)
    assert lint_imports(config_filename=str(config), no_cache=True) == 1
    assert "cmt.training" in capsys.readouterr().out
