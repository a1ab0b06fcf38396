from __future__ import annotations

from tools.bench import render, run_bench


def test_bench_measures_both_sides_of_every_ratio_and_prints_them():
    report = run_bench(mixes=("text",), clients=(1, 2), requests=4)
    rows = report["results"]
    assert [(r["clients"], r["batching"]) for r in rows] == [(1, True), (2, True), (1, False), (2, False)]
    assert all(r["errors"] == 0 and r["n"] >= 4 and 0 < r["p50"] <= r["p95"] <= r["p99"] for r in rows)
    text = render(report)
    assert "text      2 clients: throughput x" in text and report["model"] in text
    assert report["asr"]["ours_s"] > 0 and report["asr"]["ratio_ours_over_fw"] > 0


def test_cmt_bench_finds_the_checkout_tool_and_an_install_without_it_says_so(capsys):
    import pytest
    import typer

    from cmt import cli
    from tools import bench

    assert cli.checkout_tool("bench") is bench
    with pytest.raises(typer.Exit) as e:
        cli.checkout_tool("no_such_tool")
    assert e.value.exit_code == 1 and "tools/no_such_tool.py" in capsys.readouterr().err
