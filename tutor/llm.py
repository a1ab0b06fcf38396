"""Optional LLM phrasing through langchain: the model rewords, code decides.

    model = load_chat_model("ollama/llama3.2")                     # or "openai/gpt-4o-mini",
    model = load_chat_model("openai/qwen2.5", base_url="http://localhost:8000/v1")  # any
    tutor = Dialogue(pack, phraser=LLMPhraser(model))               # OpenAI-compatible server

The tutor composes each reply from the lesson pack (tutor.dialogue); the phraser hands the
chat model that planned reply together with the lesson step, the question, the student's
message, the verdict the answer checker reached, the tone and the pacing (tutor.prompts),
plus a `check_answer` tool that runs the same code checker. The model only rewords. Its
reply is refused when it contradicts the verdict (calls a wrong answer right, or a right
one wrong); a refusal, an error or a timeout makes the Dialogue fall back to the template
reply. The provider packages (langchain-openai, langchain-ollama, ...) are imported only
when a model is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from tutor.answers import Verdict
from tutor.dialogue import PhraseContext
from tutor.prompts import PACING_GUIDE, SYSTEM_PROMPT, TONE_GUIDE, USER_PROMPT, VERDICTS

TIMEOUT_S = 10.0  # s, the longest a reply may take before the template is used
MAX_TOOL_ROUNDS = 2
MAX_SENTENCES = 6

_executor: ThreadPoolExecutor | None = None

_NEGATED_RIGHT = re.compile(
    r"\b(?:not|isn'?t|wasn'?t|aren'?t|never)\s+(?:quite\s+|yet\s+|entirely\s+|exactly\s+)?"
    r"(?:right|correct)\b|\bnot quite\b")
_CLAIMS_RIGHT = re.compile(
    r"\b(?:that'?s|that is|you'?re|you are|it'?s|it is|is|was|absolutely|exactly|totally)\s+"
    r"(?:absolutely\s+|exactly\s+|totally\s+|completely\s+|100%\s+)?(?:right|correct)\b|"
    r"\bcorrect!|\bwell done\b|\bnailed it\b|\bspot on\b|\byou got it\b|\bperfect\b")
_CLAIMS_WRONG = re.compile(
    r"\bincorrect\b|\bwrong\b|\bnot (?:quite )?(?:right|correct)\b|\bnot quite\b|"
    r"\bisn'?t (?:right|correct)\b|\btry again\b|\bmistake\b|\bnot yet\b")


class LLMConfigError(ValueError):
    """The chat model named in the settings cannot be loaded; the message says why."""


class PhrasingRejected(RuntimeError):
    """The model's reply cannot be used (it contradicts the checked verdict, or is empty)."""


def load_chat_model(spec: str, **kwargs: Any):
    """A langchain chat model from "provider/model" ("ollama/llama3.1", "openai/gpt-4o-mini").

    `kwargs` go to the provider's class: base_url, api_key, temperature, timeout, ...
    """
    provider, sep, model = (spec or "").strip().partition("/")
    if not sep or not provider or not model:
        raise LLMConfigError(f'give the chat model as "provider/model", e.g. "ollama/llama3.1" '
                             f'or "openai/gpt-4o-mini"; got {spec!r}')
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise LLMConfigError(f"cannot load chat model {spec!r}: langchain is not installed "
                             "(pip install 'attune[llm]')") from None
    try:
        return init_chat_model(model, model_provider=provider, **kwargs)
    except ImportError as e:  # langchain (the llm extra) or the provider's package is missing
        raise LLMConfigError(f"cannot load chat model {spec!r}: {e}") from None
    except ValueError as e:
        raise LLMConfigError(f"cannot load chat model {spec!r}: {e}") from None


def verdict_problem(text: str, ctx: PhraseContext) -> str | None:
    """Why `text` cannot be sent, or None. A claim the planned reply makes too is fine."""
    if not text.strip():
        return "the model returned an empty reply"
    said, plan = text.lower(), ctx.plan.lower()

    def new_claims(rx: re.Pattern, s: str, p: str) -> set[str]:
        return {m.group(0) for m in rx.finditer(s)} - {m.group(0) for m in rx.finditer(p)}

    if ctx.correct is not True:
        unsaid = _NEGATED_RIGHT.sub(" ", said)
        right = new_claims(_CLAIMS_RIGHT, unsaid, _NEGATED_RIGHT.sub(" ", plan))
        if right:
            return f"the reply calls the answer right ({min(right)!r}); the checker did not"
    if ctx.correct is not False:
        wrong = new_claims(_CLAIMS_WRONG, said, plan)
        if wrong:
            return f"the reply calls the answer wrong ({min(wrong)!r}); the checker did not"
    return None


def _text(message) -> str:
    content = message.content
    if isinstance(content, str):
        return content.strip()
    parts = [c if isinstance(c, str) else c.get("text", "") for c in content
             if isinstance(c, str) or c.get("type") == "text"]
    return "".join(parts).strip()


class LLMPhraser:
    """Rewords the tutor's planned reply with a chat model; never decides correctness."""

    def __init__(self, model, *, timeout_s: float = TIMEOUT_S,
                 max_tool_rounds: int = MAX_TOOL_ROUNDS, max_sentences: int = MAX_SENTENCES):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.model, self.timeout_s = model, timeout_s
        self.max_tool_rounds, self.max_sentences = max_tool_rounds, max_sentences

    def messages(self, ctx: PhraseContext) -> list:
        from langchain_core.messages import HumanMessage, SystemMessage

        verdict = VERDICTS[ctx.correct]
        system = SYSTEM_PROMPT.format(
            verdict=verdict, tone=ctx.tone, tone_guide=TONE_GUIDE.get(ctx.tone, ctx.tone),
            pacing=ctx.pacing, pacing_guide=PACING_GUIDE.get(ctx.pacing, ctx.pacing),
            max_sentences=self.max_sentences)
        user = USER_PROMPT.format(
            step_title=ctx.step_title or "-", step_explanation=ctx.step_explanation or "-",
            question=ctx.question or "-", student_message=ctx.student_message, move=ctx.move,
            verdict=verdict, plan=ctx.plan)
        return [SystemMessage(content=system), HumanMessage(content=user)]

    def phrase(self, ctx: PhraseContext, *, check: Callable[[str], Verdict]) -> str:
        """The reworded reply; raises on error, timeout or a reply that contradicts the verdict."""
        global _executor
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="attune-llm")
        future = _executor.submit(self._run, ctx, check)
        try:
            text = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"the chat model took longer than {self.timeout_s:g} s") from None
        problem = verdict_problem(text, ctx)
        if problem:
            raise PhrasingRejected(problem)
        return text

    def _run(self, ctx: PhraseContext, check: Callable[[str], Verdict]) -> str:
        from langchain_core.messages import ToolMessage

        tool = _check_tool(check)
        try:
            model = self.model.bind_tools([tool])
        except NotImplementedError:  # a model without tool calling still phrases
            model = self.model
        messages = self.messages(ctx)
        for _ in range(self.max_tool_rounds + 1):
            ai = model.invoke(messages)
            calls = getattr(ai, "tool_calls", None) or []
            if not calls:
                return _text(ai)
            messages.append(ai)
            for call in calls:
                messages.append(ToolMessage(content=str(tool.invoke(call.get("args", {}))),
                                            tool_call_id=call.get("id") or "call"))
        raise PhrasingRejected(f"the model kept calling tools after {self.max_tool_rounds} rounds")


def _check_tool(check: Callable[[str], Verdict]):
    from langchain_core.tools import StructuredTool

    def check_answer(answer: str) -> str:
        """Check an answer to the question with the tutor's answer checker (code).

        Its result is final. It does not change the verdict on the student's answer."""
        try:
            v = check(answer)
        except Exception as e:  # noqa: BLE001 - the tool answers in words, never raises
            return f"could not check that: {e}"
        if v.correct:
            return f"correct (read as {v.normalized})"
        why = v.feedback or v.message
        return f"not correct (read as {v.normalized})" + (f": {why}" if why else "")

    return StructuredTool.from_function(check_answer, name="check_answer")


def phraser_from_settings(settings) -> LLMPhraser | None:
    """An LLMPhraser for `settings.llm` ("provider/model"), or None when no LLM is set.

    The provider reads its own variables: OPENAI_BASE_URL and OPENAI_API_KEY for any
    OpenAI-compatible server, OLLAMA_HOST for Ollama. LLMConfigError when it cannot load."""
    spec = getattr(settings, "llm", None)
    if not spec:
        return None
    timeout_s = getattr(settings, "llm_timeout_s", None) or TIMEOUT_S
    return LLMPhraser(load_chat_model(spec), timeout_s=timeout_s)
