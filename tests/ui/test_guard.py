"""ui.guard on a bare Starlette app: bindings are forgotten only when Gradio holds no state."""

from __future__ import annotations

from types import SimpleNamespace

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ui.guard import ClientGuard


def guarded(max_sessions: int):
    async def ok(request):
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", ok), Route("/gradio_api/heartbeat/{sh}", ok)],
                    middleware=[Middleware(ClientGuard, max_sessions=max_sessions)])
    app.state_holder = SimpleNamespace(session_data={})  # what Gradio's App has
    return app


def browser(app) -> TestClient:
    client = TestClient(app)
    client.get("/")
    return client


def test_a_flood_of_new_sessions_never_frees_a_held_one_for_another_browser():
    app = guarded(max_sessions=3)
    teacher = browser(app)
    assert teacher.get("/gradio_api/heartbeat/teacher").status_code == 200
    app.state_holder.session_data["teacher"] = object()  # Gradio holds the signed-in state
    attacker = browser(app)
    codes = [attacker.get(f"/gradio_api/heartbeat/junk{i}").status_code for i in range(50)]
    assert codes.count(200) == 50  # junk makes room for junk: no one is locked out
    assert attacker.get("/gradio_api/heartbeat/teacher").status_code == 403
    assert teacher.get("/gradio_api/heartbeat/teacher").status_code == 200


def test_when_every_binding_is_held_a_new_session_waits():
    app = guarded(max_sessions=2)
    for name in ("a", "b"):
        assert browser(app).get(f"/gradio_api/heartbeat/{name}").status_code == 200
        app.state_holder.session_data[name] = object()
    r = browser(app).get("/gradio_api/heartbeat/c")
    assert r.status_code == 503 and r.headers["retry-after"] == "30"
    del app.state_holder.session_data["a"]  # Gradio let session a go
    assert browser(app).get("/gradio_api/heartbeat/c").status_code == 200
