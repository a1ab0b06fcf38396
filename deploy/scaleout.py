"""Scale-out shown: two CMT replicas (containers) behind one address, one killed mid-load.

    python deploy/scaleout.py [--image attune:0.1.0] [--students 8] [--seconds 60] [--kill-at 20]

Starts two containers of the service image on 127.0.0.1 (host networking, read-only root,
non-root), Debian's haproxy in front of them (deploy/haproxy.cfg), and a class of simulated
students whose tutor sessions (tutor.session.Conversation, the app's own client from
tutor.client.make_client, SQLite) send typed turns to the balancer's address. At --kill-at
seconds one replica is SIGKILLed (`docker kill`). Afterwards the database is counted against
what the students were told: turns sent, acknowledged, stored, lost, and how many readings
came from the service or from the client's embedded fallback. Everything it starts, it stops.
Needs Docker, haproxy and the `cmt` extra (for the fallback); talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a clone: its tutor/ and cmt/

PHRASES = ["hint please", "I'm confused", "this is great!", "can you explain again?", "next",
           "I hate fractions", "wow ok"]


def docker_run(image: str, name: str, port: int, key: str) -> None:
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--network", "host", "--read-only",
         "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
         "-e", f"ATTUNE_SERVE_PORT={port}", "-e", f'ATTUNE_API_KEYS=["{key}"]',
         image, "cmt", "serve", "--host", "127.0.0.1"],
        check=True, capture_output=True)


def wait_ready(url: str, timeout_s: float = 300.0) -> float:
    """Seconds until `url`/readyz answers 200."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s")


def warm_up(url: str, key: str) -> float:
    """Seconds for one text reading straight from a replica (its first request loads lazily)."""
    req = urllib.request.Request(f"{url}/v1/analyze", data=json.dumps({"text": "hello"}).encode(),
                                 headers={"Content-Type": "application/json", "X-API-Key": key})
    start = time.monotonic()
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()
    return time.monotonic() - start


def student_turns(conv, stop: threading.Event, log: list, seed: int) -> None:
    """Typed turns until `stop`; each outcome appended to `log`."""
    from tutor.session import StorageError
    from tutor.simulate import ScriptTurn, resolve

    rng = random.Random(seed)
    while not stop.is_set():
        roll = rng.random()
        text = (resolve(ScriptTurn(answer="right" if roll < 0.5 else "wrong"), conv.dialogue)
                if roll < 0.8 else rng.choice(PHRASES))
        t = time.monotonic()
        log.append(("sent", t))
        try:
            r = conv.turn(text)
        except StorageError:
            log.append(("refused", t))
        except Exception as e:  # noqa: BLE001  a crash: the finding
            log.append(("crash", f"{type(e).__name__}: {e}"))
            return
        else:
            degraded = None if r.reading is None else r.reading.degraded
            log.append(("ack", (r.turn_id, degraded, time.monotonic() - t)))
        stop.wait(rng.uniform(0.2, 1.0))


def run(*, image: str, students: int, seconds: float, kill_at: float, lb_port: int,
        ports: tuple[int, int], timeout_s: float = 5.0) -> dict:
    from sqlalchemy import func, select

    from tutor.client import make_client
    from tutor.db import init_db
    from tutor.db.models import EmotionReading, Turn
    from tutor.session import Conversation
    from tutor.settings import Settings

    key = secrets.token_hex(16)
    names = [f"attune-scaleout-{c}-{os.getpid()}" for c in "ab"]
    lb = f"http://127.0.0.1:{lb_port}"
    haproxy = None
    figures: dict = {"image": image, "students": students, "seconds": seconds, "kill_at_s": kill_at,
                     "client_timeout_s": timeout_s}
    with tempfile.TemporaryDirectory(prefix="attune-scaleout-") as tmp:
        try:
            for name, port in zip(names, ports):
                docker_run(image, name, port, key)
            figures["ready_s"] = [round(wait_ready(f"http://127.0.0.1:{p}"), 1) for p in ports]
            figures["first_reading_s"] = [round(warm_up(f"http://127.0.0.1:{p}", key), 1)
                                          for p in ports]
            env = dict(os.environ, LB_HOST="127.0.0.1", LB_PORT=str(lb_port),
                       REPLICA_A=f"127.0.0.1:{ports[0]}", REPLICA_B=f"127.0.0.1:{ports[1]}")
            haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(HERE / "haproxy.cfg")],
                                       env=env, stdout=subprocess.DEVNULL,
                                       stderr=open(Path(tmp) / "haproxy.log", "w"))  # noqa: SIM115
            wait_ready(lb, 30)

            settings = Settings(home=Path(tmp), cmt_url=lb, cmt_api_key=key, cmt_timeout_s=timeout_s,
                                database_url=f"sqlite:///{tmp}/attune.db")
            db = init_db(settings.database_url)
            client = make_client(settings)  # as the app: RemoteCMT + breaker + embedded fallback
            convs = [Conversation(db=db, cmt=client, student_handle=f"scaleout-{i:02d}")
                     for i in range(students)]
            logs: list[list] = [[] for _ in convs]
            stop = threading.Event()
            threads = [threading.Thread(target=student_turns, args=(c, stop, log, i), daemon=True)
                       for i, (c, log) in enumerate(zip(convs, logs))]
            start = time.monotonic()
            for th in threads:
                th.start()
            time.sleep(kill_at)
            subprocess.run(["docker", "kill", names[0]], check=True, capture_output=True)
            killed = time.monotonic()
            time.sleep(max(0.0, seconds - kill_at))
            stop.set()
            for th in threads:
                th.join(60)
            figures["hung_threads"] = sum(th.is_alive() for th in threads)

            events = [e for log in logs for e in log]
            acks = [e[1] for e in events if e[0] == "ack"]
            with db() as s:
                ids = [c.session_id for c in convs]
                stored = set(s.scalars(select(Turn.id).where(Turn.session_id.in_(ids))))
                readings = s.scalar(select(func.count(EmotionReading.id))
                                    .where(EmotionReading.session_id.in_(ids))) or 0
            figures.update({
                "turns_sent": sum(e[0] == "sent" for e in events),
                "turns_acknowledged": len(acks),
                "turns_stored": len(stored),
                "turns_lost": len({a[0] for a in acks} - stored),
                "turns_refused": sum(e[0] == "refused" for e in events),
                "crashes": [e[1] for e in events if e[0] == "crash"][:5],
                "readings_from_service": sum(a[1] is False for a in acks),
                "readings_from_fallback": sum(a[1] is True for a in acks),
                "turns_without_reading": sum(a[1] is None for a in acks),
                "readings_stored": readings,
                "turn_s_max": round(max((a[2] for a in acks), default=0.0), 2),
                "killed_after_s": round(killed - start, 1),
            })
            for c in convs:
                c.close()
            figures["balancer_log"] = (Path(tmp) / "haproxy.log").read_text().splitlines()[-5:]
        finally:
            if haproxy is not None:
                haproxy.terminate()
                haproxy.wait(10)
            subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
    figures["ok"] = (figures.get("turns_lost") == 0 and figures.get("turns_acknowledged", 0) > 0
                     and not figures.get("crashes") and figures.get("turns_refused") == 0
                     and not figures.get("hung_threads"))
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", default="attune:0.1.0")
    p.add_argument("--students", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--kill-at", type=float, default=20.0)
    p.add_argument("--lb-port", type=int, default=8100)
    p.add_argument("--ports", type=int, nargs=2, default=(8101, 8102))
    p.add_argument("--timeout-s", type=float, default=5.0,
                   help="the tutor client's timeout (ATTUNE_CMT_TIMEOUT_S; the app's default: 5)")
    a = p.parse_args(argv)
    figures = run(image=a.image, students=a.students, seconds=a.seconds, kill_at=a.kill_at,
                  lb_port=a.lb_port, ports=tuple(a.ports), timeout_s=a.timeout_s)
    print(json.dumps(figures, indent=2))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
