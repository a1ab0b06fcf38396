"""The short version of `attune trust`: the same checks, a few students and seconds each."""

from __future__ import annotations

import pytest

from tools import trust


@pytest.fixture(autouse=True)
def quiet(caplog):
    import logging

    caplog.set_level(logging.CRITICAL, logger="tutor")


def test_a_small_class_loses_no_turn_and_no_reading():
    f = trust.load(students=3, seconds=3.0, think_s=(0.3, 0.8), model="stand-in")
    assert f["ok"], f
    assert f["turns_acked"] >= 3 and f["turns_lost"] == 0 and f["turns_in_db"] == f["turns_acked"]
    assert f["frames_read"] > 0 and f["readings_in_db"] == f["readings_returned"]
    assert f["turn_ms_p95"] is not None and f["turn_ms_p95"] >= f["turn_ms_p50"]


def test_sigkill_mid_write_keeps_every_acknowledged_turn_and_resumes():
    f = trust.sigkill(rounds=1, min_acks=10)
    assert f["ok"], f
    assert f["turns_lost"] == 0 and f["integrity"] == ["ok"] and f["resumed"] == [True]


def test_killing_the_service_degrades_then_recovers():
    f = trust.service_restart(model="stand-in", before_s=1.0, down_s=1.5, after_s=1.5)
    assert f["ok"], f
    assert f["turns_while_down"] > 0 and f["degraded_while_down"] == f["turns_while_down"]
    assert f["breaker_at_end"] == "closed" and f["turns_lost"] == 0


@pytest.mark.postgres
def test_a_database_outage_refuses_turns_then_recovers():
    admin, why = trust.postgres_admin()
    if admin is None:
        pytest.skip(why)
    admin.dispose()
    f = trust.db_outage(before_s=1.0, down_s=1.5, after_s=1.5)
    assert f["ok"], f
    assert f["turns_refused_during_outage"] > 0 and f["acked_during_outage"] == 0
    assert f["acked_after"] > 0 and f["turns_lost"] == 0


def test_tcp_proxy_forwards_and_cuts_off():
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo():
        conn, _ = server.accept()
        conn.sendall(conn.recv(100).upper())
        conn.close()

    threading.Thread(target=echo, daemon=True).start()
    proxy = trust.TcpProxy(server.getsockname()).start()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
        c.sendall(b"ping")
        assert c.recv(100) == b"PING"
    proxy.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
    server.close()


def test_fuzz_short_has_no_crash_and_no_5xx():
    f = trust.fuzz(examples=10, model="stand-in", huge=False)
    assert f["ok"], f["failures"]
    assert not [s for s in f["status"] if int(s or 0) >= 500 and s != 503]
    assert f["cases"]["Conversation.turn"] == 10 and f["cases_total"] > 60
    assert f["overload"]["shed_503"] > 0 and f["overload"]["all_with_retry_after"]


def test_crafted_audio_is_refused_cheaply_each_in_its_own_process():
    f = trust.audio_bombs(names=trust.QUICK_AUDIO)
    assert f["ok"], f["failures"]
    assert set(f["files"]) == set(trust.QUICK_AUDIO)
    assert all(row["outcome"].startswith("refused") for row in f["files"].values())


def test_mixed_traffic_answers_every_innocent_request_and_refuses_the_crafted_ones():
    f = trust.mixed(clients=6, seconds=3.0, period_s=0.2, model="stand-in")
    assert f["ok"], f
    assert f["text"]["n"] > f["speech"]["n"] and f["text"]["p95_s"] >= f["text"]["p50_s"]
    assert set(f["text"]["status"]) == {200}


def test_main_prints_a_table_and_returns_zero(capsys):
    assert trust.main(["--only", "load", "--students", "2", "--seconds", "1", "--model", "stand-in"]) == 0
    out = capsys.readouterr().out
    assert "load.turns_lost" in out and "load.turn_ms_p95" in out


@pytest.mark.slow
def test_the_full_run_passes():
    assert trust.main(["--students", "30", "--seconds", "180"]) == 0


def test_attune_trust_runs_the_checkout_tool_and_an_install_without_it_says_so(capsys):
    import typer
    from typer.testing import CliRunner

    from tutor import cli

    r = CliRunner().invoke(cli.app, ["trust", "--help"])
    assert r.exit_code == 0 and "--short" in r.output, r.output
    with pytest.raises(typer.Exit) as e:
        cli.checkout_tool("no_such_tool")
    assert e.value.exit_code == 1
    assert "runs from a clone of the Attune repository" in capsys.readouterr().err
