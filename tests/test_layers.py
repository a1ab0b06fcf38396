"""The layers as the README draws them: ui reaches cmt only through tutor; tutor uses the wire
contract alone, bar tutor/embedded.py (the model in the app's process, loaded on demand); so
the app's modules load without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
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
