"""The layers as the README draws them. The contracts in pyproject.toml's [tool.importlinter]
(cmt.model never imports training or the service; tutor never imports torch, bar
tutor/embedded.py, the model in the app's process; ui never imports cmt) are checked on every
import the code has; and the app's modules load without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IN_PROCESS = REPO / "tutor" / "embedded.py"  # the one documented exception


def _cmt_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        found |= {n for n in names if n == "cmt" or n.startswith("cmt.")}
    return found


def test_ui_imports_nothing_from_cmt_and_tutor_only_the_contract():
    ui = {str(p.relative_to(REPO)): m for p in (REPO / "ui").rglob("*.py") if (m := _cmt_imports(p))}
    assert not ui, ui
    tutor = {str(p.relative_to(REPO)): m - {"cmt.contract"} for p in (REPO / "tutor").rglob("*.py")
             if p != IN_PROCESS and _cmt_imports(p) - {"cmt.contract"}}
    assert not tutor, tutor


def test_the_app_and_its_views_load_without_torch():
    code = ("import sys, ui.app, ui.demo, ui.student, ui.teacher, tutor.cli, tutor.client, "
            "tutor.session, tutor.simulate, tutor.settings; "
            "print(sorted(m for m in ('torch', 'transformers', 'cmt.serve') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"



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
