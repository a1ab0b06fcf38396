from __future__ import annotations

import time
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from pydantic import Field

from tutor.dialogue import Dialogue, PhraseContext, load_lesson
from tutor.llm import LLMConfigError, LLMPhraser, load_chat_model, verdict_problem
from tutor.mastery import update
from tutor.policy import Decision

CALM = Decision("frustrated", "calm", "worked_example", 1, "r")


class Recording(GenericFakeChatModel):
    """A fake chat model that keeps what it was sent, and can call tools."""

    seen: list = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any):
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def bind_tools(self, tools, **kwargs):
        return self


class Broken(FakeListChatModel):
    def _call(self, *args, **kwargs):
        raise ConnectionError("model server unreachable")


class Slow(FakeListChatModel):
    def _call(self, *args, **kwargs):
        time.sleep(1.0)
        return "too late"


@pytest.fixture(scope="module")
def pack():
    return load_lesson("fractions")


def tutor(pack, model, **kw) -> Dialogue:
    d = Dialogue(pack, seed=0, phraser=LLMPhraser(model, **kw))
    d.presented = True  # the first question is on screen
    return d


def test_the_llm_is_given_the_checked_verdict_tone_and_step_and_its_words_are_used(pack):
    said = ("Hmm, not quite: that compares eaten with left. Look at the whole pizza, "
            "8 slices. Try again, slowly.")
    model = Recording(messages=iter([said]))
    d = tutor(pack, model)
    reply = d.respond("3/5", CALM)
    assert reply.phrased_by == "llm" and reply.text.startswith("Hmm, not quite")
    assert reply.correct is False and "worked example" in reply.action  # the plan stands
    system, user = model.seen[0][0].content, model.seen[0][1].content
    assert "NOT correct" in system and "calm" in system and "worked example" in system
    assert "What a fraction means" in user and "8 equal slices" in user and "3/5" in user
    assert "slices left" in user  # the misconception feedback is in the planned reply


def test_the_llm_never_overrides_the_verdict(pack):
    d = tutor(pack, FakeListChatModel(responses=["That's correct, well done!"]))
    p0 = d.mastery.p_known("fraction_meaning")
    reply = d.respond("3/5", CALM)
    assert reply.correct is False and reply.phrased_by == "template"
    assert "well done" not in reply.text.lower() and "slices left" in reply.text
    assert d.mastery.p_known("fraction_meaning") == update(p0, False) and d.wrong_streak == 1
    right = tutor(pack, FakeListChatModel(responses=["Not quite right, try again."]))
    reply = right.respond("3/8", CALM)
    assert reply.correct is True and reply.phrased_by == "template"


@pytest.mark.parametrize("model, timeout_s", [
    (Broken(responses=["x"]), 5.0),
    (Slow(responses=["x"]), 0.05),
    (FakeListChatModel(responses=["   "]), 5.0),
])
def test_errors_timeouts_and_empty_replies_fall_back_to_the_template(pack, model, timeout_s):
    d = tutor(pack, model, timeout_s=timeout_s)
    t0 = time.perf_counter()
    reply = d.respond("hint", CALM)
    assert time.perf_counter() - t0 < 0.9
    assert reply.phrased_by == "template" and pack.steps[0].examples[0].problem in reply.text


def test_the_check_answer_tool_runs_the_code_checker_on_the_answered_question(pack):
    call = AIMessage(content="", tool_calls=[{"name": "check_answer", "args": {"answer": "6/16"},
                                               "id": "c1", "type": "tool_call"}])
    model = Recording(messages=iter([call, "You've got it: 3/8. Next, weekend days!"]))
    d = tutor(pack, model)
    reply = d.respond("3/8", Decision("delighted", "upbeat", "normal", 0, "r"))
    assert reply.phrased_by == "llm" and reply.correct is True
    tool_message = model.seen[1][-1]
    assert tool_message.content.startswith("correct") and tool_message.tool_call_id == "c1"


def test_verdict_problem_reads_claims_against_the_plan():
    ctx = PhraseContext(plan="Not quite. Try again.", tone="calm", pacing="normal",
                        move="answer", student_message="3/5", correct=False)
    assert verdict_problem("You're right!", ctx)
    assert verdict_problem("That isn't right yet, have another go.", ctx) is None
    ok = PhraseContext(plan="That's right. Here's the next one: a common mistake is ...",
                       tone="upbeat", pacing="normal", move="answer", student_message="3/8",
                       correct=True)
    assert verdict_problem("Yes! Next one; watch for a common mistake ...", ok) is None
    assert verdict_problem("Hmm, that's wrong.", ok)


def test_load_chat_model_names_what_is_wrong():
    with pytest.raises(LLMConfigError, match="provider/model"):
        load_chat_model("llama3")
    with pytest.raises(LLMConfigError, match="nosuchprovider"):
        load_chat_model("nosuchprovider/some-model")


# ---------------------------------------------------------------- ATTUNE_LLM, wired in

def test_no_llm_setting_means_template_replies():
    from tutor.settings import Settings
    from tutor.llm import phraser_from_settings

    assert phraser_from_settings(Settings(llm=None)) is None


def test_the_conversation_and_the_simulator_use_the_phraser_and_keep_the_verdict():
    from tutor.simulate import SCENARIOS_DIR, run_scenario

    words = FakeListChatModel(responses=["Let's look at this together, calmly."] * 50)
    sim = run_scenario(SCENARIOS_DIR / "fast_turns_frustration.yaml",
                       phraser=LLMPhraser(words, timeout_s=5))
    assert all(r.reply == "Let's look at this together, calmly." for r in sim.rows)
    liar = FakeListChatModel(responses=["That's right, well done!"] * 50)
    sim = run_scenario(SCENARIOS_DIR / "fast_turns_frustration.yaml",
                       phraser=LLMPhraser(liar, timeout_s=5))
    wrong = [r for r in sim.rows if r.correct is False]
    assert wrong and all("well done" not in r.reply for r in wrong)  # the template instead


class _StubOpenAI:
    """A tiny OpenAI-compatible chat server on 127.0.0.1: answers every chat with `reply`."""

    def __init__(self, reply: str):
        import http.server
        import json
        import threading

        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                out = json.dumps({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.requests: list = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_attune_llm_reaches_an_openai_compatible_server_and_its_words_reach_the_student(
        monkeypatch, db, keyword_engine):
    pytest.importorskip("langchain_openai")
    from tutor.settings import Settings
    from tutor.client import EmbeddedCMT
    from tutor.llm import phraser_from_settings
    from ui.deps import Deps
    from ui.student import respond

    server = _StubOpenAI("Hello from the local model. Here's a question for you.")
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "not-needed")
        settings = Settings(llm="openai/stub-model", llm_timeout_s=20)
        deps = Deps(settings=settings, db=db, cmt=EmbeddedCMT(keyword_engine),
                    phraser=phraser_from_settings(settings))
        *_, (history, _, _, _) = respond(deps, "Sam", "fractions", "hi", [], None)
        assert history[-1]["content"] == "Hello from the local model. Here's a question for you."
        assert server.requests and server.requests[0]["model"] == "stub-model"
        system = server.requests[0]["messages"][0]["content"]
        assert "the tutor's code has already checked" in system
    finally:
        server.close()


LLM_URL = __import__("os").environ.get("ATTUNE_TEST_LLM_URL", "http://127.0.0.1:11434/v1")


@pytest.mark.llm
def test_a_real_local_chat_model_phrases_without_changing_the_verdict(pack, monkeypatch):
    """Talks to a real OpenAI-compatible server (Ollama by default) when one is reachable."""
    import httpx

    pytest.importorskip("langchain_openai")
    try:
        models = httpx.get(f"{LLM_URL}/models", timeout=2).json()["data"]
    except (httpx.HTTPError, ValueError, KeyError) as e:
        pytest.skip(f"no OpenAI-compatible chat server at {LLM_URL}: {type(e).__name__}: {e}")
    if not models:
        pytest.skip(f"the chat server at {LLM_URL} serves no model")
    monkeypatch.setenv("OPENAI_API_KEY", "not-needed")
    model = load_chat_model(f"openai/{models[0]['id']}", base_url=LLM_URL, temperature=0)
    d = tutor(pack, model, timeout_s=120)
    wrong = d.question.misconceptions[0].answer
    d.evidence(wrong)
    reply = d.respond(wrong, CALM)
    assert reply.correct is False and reply.text.strip()
    assert verdict_problem(reply.text, PhraseContext(plan="", tone="calm", pacing="normal",
                                                     move="answer", student_message=wrong,
                                                     correct=False)) is None
