from __future__ import annotations

from cmt.bench import render, run_bench


def test_bench_measures_both_sides_of_every_ratio_and_prints_them():
    report = run_bench(mixes=("text",), clients=(1, 2), requests=4)
    rows = report["results"]
    assert [(r["clients"], r["batching"]) for r in rows] == [(1, True), (2, True), (1, False), (2, False)]
    assert all(r["errors"] == 0 and r["n"] >= 4 and 0 < r["p50"] <= r["p95"] <= r["p99"] for r in rows)
    text = render(report)
    assert "text      2 clients: throughput x" in text and report["model"] in text
    assert report["asr"]["ours_s"] > 0 and report["asr"]["ratio_ours_over_fw"] > 0
