"""What a client that never signs in can upload to the app as `attune run` serves it, and how
long it stays on disk (docs/compliance.md quotes a run of it).

    PYTHONPATH=. python tools/upload_budget.py --port 18202 --minutes 8

The app runs in-process on loopback with a keyword test model and its own Gradio cache in a
temporary folder; the script uploads random 4 MB files as fast as it is let and prints, every
minute, what was accepted and what is on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--minutes", type=float, default=8.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="attune-upload-budget-"))
    cache = root / "gradio"
    os.environ["GRADIO_TEMP_DIR"] = str(cache)  # before Gradio's objects are made

    import httpx

    from cmt.serve.engine import Engine
    from tests.fakes import KeywordModel
    from tutor.client import EmbeddedCMT
    from tutor.db import init_db
    from tutor.settings import Settings
    from ui.app import build_app, launch
    from ui.deps import Deps

    settings = Settings(home=root / "home", port=args.port)
    blocks = build_app(Deps(settings=settings, db=init_db(f"sqlite:///{root / 'attune.db'}"),
                            cmt=EmbeddedCMT(Engine(KeywordModel()))))
    launch(blocks, settings, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{args.port}"

    def upload(client: httpx.Client, size: int) -> int:
        files = {"files": ("x.wav", os.urandom(size))}  # random: Gradio files uploads by hash
        return client.post("/gradio_api/upload", files=files).status_code

    def on_disk() -> int:
        return sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())

    try:
        print("no cookie, 1 MB:", upload(httpx.Client(base_url=url), MB), flush=True)
        page = httpx.Client(base_url=url, timeout=60)
        page.get("/")
        print("cookie, no open page, 1 MB:", upload(page, MB), flush=True)
        with page.stream("GET", "/gradio_api/heartbeat/script"):  # what every page opens
            pass
        print("open page, 17 MB:", upload(page, 17 * MB), "bytes left on disk:", on_disk(),
              flush=True)
        start, accepted, peak, codes, next_report = time.time(), 0, 0, {}, 0.0
        while (elapsed := time.time() - start) < args.minutes * 60:
            code = upload(page, 4 * MB)
            codes[code] = codes.get(code, 0) + 1
            accepted += 4 * MB if code == 200 else 0
            if code != 200:
                time.sleep(1)
            peak = max(peak, on_disk())
            if elapsed >= next_report:
                print(f"t={elapsed:.0f}s accepted={accepted / MB:.0f} MB "
                      f"on disk={on_disk() / MB:.0f} MB peak={peak / MB:.0f} MB", flush=True)
                next_report += 60
        print(json.dumps({"minutes": args.minutes, "accepted_MB": accepted / MB,
                          "peak_on_disk_MB": round(peak / MB, 1),
                          "on_disk_at_end_MB": round(on_disk() / MB, 1), "codes": codes}))
    finally:
        blocks.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
