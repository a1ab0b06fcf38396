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
