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
