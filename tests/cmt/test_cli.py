"""The cmt command line: a missing corpus ends a command with its message, not a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cmt.cli import app


@pytest.mark.parametrize("args, says", [
    (["train"], "corpus file not found"),
    (["tune-text"], "corpus file not found"),
    (["tune-face"], "is not a facial_expressions corpus"),
    (["evaluate", "--dataset", "meld"], "corpus file not found"),
])
def test_missing_corpus_is_a_usage_error(tmp_path, args, says):
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)  # a usage exit, not an uncaught error


def test_tune_text_keeps_the_shipped_recipe_unless_told(tmp_path, monkeypatch):
    import cmt.text_tune
    from cmt.text_tune import TuneConfig

    seen = []

    def run(config, data_dir, out, log):
        seen.append(config)
        return {"epoch": 1, "seconds": 0.0}

    monkeypatch.setattr(cmt.text_tune, "run", run)
    runner = CliRunner()
    assert runner.invoke(app, ["tune-text", "--data-dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["tune-text", "--data-dir", str(tmp_path), "--layers", "4",
                               "--meld-times", "1"]).exit_code == 0
    assert seen[0] == TuneConfig()
    assert (seen[1].layers, seen[1].epochs, seen[1].oversample) == (4, TuneConfig().epochs,
                                                                    (("meld", 1),))
