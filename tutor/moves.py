"""The learned part of reading a student's move: features, the shipped weights, inference.

A linear SVM over TF-IDF features (word 1-2 grams, character 2-5 grams inside words,
character 4-5 grams across a space, and a few facts about the message: a question is waiting,
it is nothing but a maths answer, it shouts, it laughs or cheers) picks the move; a message
with letters outside ASCII (another script, or accents) also gives the words and character
grams of its plain Latin transliteration (anyascii), so "сұрақты қайталаңызшы" and "suraqty
qaytalangyzshy", "わからない" and "wakaranai", "não entendo" and "nao entendo" share
features; a second, binary one flags frustration; a third says which feeling a `vent` puts
into words (worry, feeling down, gladness, boredom or anger); a fourth how a request for
harder work is made (keen, bored, or plain). Their margins are made probabilities by a
temperature (the move, the feeling, the keenness) and Platt scaling (the flag). Then each
head is stacked with the message's multilingual sentence embedding (`tutor.sentences`): a
logistic regression reads the head's logits beside the embedding, so a message in words no
training message used is still read by its meaning; where the encoder cannot load, the n-gram
heads read alone. All are fitted with scikit-learn by `tools/train_moves.py` on
`data/moves/train.jsonl` (the feelings from `data/moves/feelings.txt`, the keenness from
`data/moves/keenness.txt`) and shipped as plain arrays in `data/moves/model.npz`; inference
here is numpy (no torch, no scikit-learn): under a millisecond per message for the n-grams,
then the embedding's tens of milliseconds (`tutor.sentences`).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from anyascii import anyascii

from tutor.settings import REPO_DATA_DIR
from tutor import sentences
from tutor.answers import extract_answer, is_only_an_answer

MOVES_DIR = REPO_DATA_DIR / "moves"
MODEL_PATH = MOVES_DIR / "model.npz"
CHAR_NGRAMS = (2, 5)  # inclusive range of character n-gram lengths, inside words
SPAN_NGRAMS = (4, 5)  # and of those that span a space ("t get", "ont ge": typos across words)
MAX_CHARS = 2000  # longer messages are read from their first MAX_CHARS characters

log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W\d_]+|9|[?!/=%+*^-]")
# emoticons typed with punctuation: ":(", ":'(", ">:(", ":/", ":P", "-_-", "^^", "<3", "xD"
_EMOTICON = re.compile(r"(?<![\w:;])(?:>?[:;=]['-]?[()\[\]/\\|pdo3*]+|[-^>t]_+[-^<t]|\^\^|<3|"
                       r"x[dD]+|-\.-)(?![\w])", re.IGNORECASE)
_NOT_READ = "\ufffd\ufe0f\ufe0e\u200d"  # replacement char, emoji presentation and joiner
# laughter as students type it: lol, lmao, haha, jaja, hihi, kkkk, ㅋㅋ, 555 (Thai), www (Japanese),
# mdr (French), wkwk (Indonesian), rsrs (Portuguese), xD, хаха, ههه, חחח, 哈哈
_LAUGH = re.compile(
    r"(?<![^\W\d_])(?:l+o+l+[sz]?|lmf?a+o+|rofl|(?:[hj]+[aeiou]){2,}h?|x+d+|k{3,}|ㅋ{2,}|ㅎ{2,}"
    r"|5{3,}|w{3,}|ｗ{2,}|mdr+|ptdr|wk(?:wk)+|rs(?:rs)+|jsjs\w*|[хx]а(?:[хx]а)+\w*|ахах\w*|ه{3,}"
    r"|ח{3,}|哈{2,}|呵{2,}|嘻{2,}|笑)(?![^\W\d_])", re.IGNORECASE)
# words in the Unicode names of emoji that laugh, smile or celebrate
_GLAD = ("JOY", "LAUGH", "GRIN", "SMIL", "PARTY", "POPPER", "CONFETTI", "TROPHY", "FLEXED",
         "SPARKLES", "STAR-STRUCK", "HEART", "CLAPPING", "THUMBS UP", "SUNGLASSES", "HUNDRED")


def readable(text: str) -> str:
    """The text without what carries no meaning: U+FFFD (bytes that were not UTF-8),
    control characters, emoji joiners and skin-tone modifiers."""
    return "".join(c for c in text[:MAX_CHARS] if c not in _NOT_READ and not (
        unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") and c not in "\t\n")
        and not "\U0001f3fb" <= c <= "\U0001f3ff")


def mostly_garbled(text: str) -> bool:
    """Most of the message is in words holding U+FFFD (bytes that were not UTF-8, decoded
    with replacement): what is left between the replacements is chance, not something said.
    One word spoiled in a readable line ("qu\ufffd" of a Latin-1 "qué") is not enough."""
    words = text[:MAX_CHARS].split()
    spoiled = sum(len(w) for w in words if "\ufffd" in w)
    return spoiled > sum(len(w) for w in words if "\ufffd" not in w)


def symbols(text: str) -> list[str]:
    """Emoji and other pictographs, and typed emoticons, as tokens; an emoji also gives the
    words of its Unicode name, so one never seen is read by its kin ("POUTING FACE" ->
    "pouting", "face")."""
    out = []
    for c in text:
        if unicodedata.category(c) == "So":
            out.append(c)
            out += [f"#{w}" for w in unicodedata.name(c, "").lower().split() if len(w) > 2]
    out += [re.sub(r"^(>?[:;=])-", r"\1", m.lower()) for m in _EMOTICON.findall(text)]
    return out


def normalise(text: str) -> str:
    """Lower case, plain quotes, no apostrophes inside words (don't -> dont), letters
    stretched past two cut to two (sooo -> soo), digit runs as 9 (3/4 -> 9/9)."""
    s = unicodedata.normalize("NFKC", text[:MAX_CHARS]).lower()
    s = s.replace("’", "'").replace("‘", "'").replace("`", "'")
    s = re.sub(r"(?<=[^\W\d_])'(?=[^\W\d_])", "", s)
    s = re.sub(r"([^\W\d_])\1{2,}", r"\1\1", s)
    s = re.sub(r"\d+(?:[.,]\d+)?", "9", s)
    return re.sub(r"\s+", " ", s).strip()


def _length_bucket(n: int) -> str:
    return "0" if n == 0 else "1" if n == 1 else "2" if n == 2 else "3" if n <= 4 else (
        "5" if n <= 8 else "9")


def _char_grams(words: list[str]) -> list[str]:
    out = []
    for w in words:
        padded = f" {w} "
        for n in range(CHAR_NGRAMS[0], CHAR_NGRAMS[1] + 1):
            out += [f"c:{padded[i:i + n]}" for i in range(max(len(padded) - n + 1, 0))]
    return out


def beyond_ascii(text: str) -> bool:
    """A letter outside ASCII: another script, or a Latin letter with an accent."""
    return any(c.isalpha() and not c.isascii() for c in text)


def latin(s: str) -> str | None:
    """A normalised message with a letter outside ASCII, transliterated to plain Latin letters
    ("не понимаю" -> "ne ponimayu", "não entendo" -> "nao entendo"); None when it has none."""
    if not beyond_ascii(s):
        return None
    return normalise(anyascii(s))


def glad(text: str) -> bool:
    """The message laughs or celebrates (laughter typed in any of several languages, or an
    emoji that laughs, smiles or cheers): its capitals and !!! are then joy's, not anger's."""
    return bool(_LAUGH.search(text)) or any(
        unicodedata.category(c) == "So" and any(w in unicodedata.name(c, "") for w in _GLAD)
        for c in text)


def features(text: str, question_waiting: bool) -> list[str]:
    """The message as feature names (a name repeated counts twice)."""
    raw = readable(text)
    s = normalise(raw)
    words = _WORD.findall(s)
    out = [f"w:{w}" for w in words] + [f"e:{e}" for e in symbols(raw)]
    out += [f"b:{a} {b}" for a, b in zip(["<s>", *words], [*words, "</s>"])]
    out += _char_grams(words)
    roman = latin(s)
    if roman is not None:  # the romanised spelling a student of that language may type instead
        roman_words = _WORD.findall(roman)
        out += [f"w:{w}" for w in roman_words] + _char_grams(roman_words)
    line = f" {' '.join(words)} "
    for n in range(SPAN_NGRAMS[0], SPAN_NGRAMS[1] + 1):
        out += [f"x:{line[i:i + n]}" for i in range(len(line) - n + 1)
                if " " in line[i + 1:i + n - 1]]
    q = "q" if question_waiting else "noq"
    out.append(f"m:{q}")
    only = is_only_an_answer(raw)
    has = only or extract_answer(raw) is not None
    out += [f"m:only_answer_{q}"] * only + [f"m:has_answer_{q}"] * has
    out.append(f"m:len{_length_bucket(len(words))}_{q}")
    letters = [c for c in raw if c.isalpha()]
    joy = "_glad" if glad(raw) else ""  # "NOOO my crown 😂" shouts for fun
    if len(letters) >= 3 and sum(c.isupper() for c in letters) >= 0.7 * len(letters):
        out.append(f"m:shout{joy}")
    elif re.search(r"\b[A-Z]{3,}\b", raw):
        out.append(f"m:caps{joy}")  # one word shouted: "can you just SHOW me"
    if re.search(r"[!?]{2,}", raw):
        out.append(f"m:marks{joy}")
    if joy:
        out.append("m:glad")
    if s.endswith("?"):
        out.append("m:ends_q")
    if any(a == b and a.isalpha() for a, b in zip(words, words[1:])):
        out.append("m:repeat")  # "stuck stuck stuck", "no no no"
    if not words:
        out.append("m:empty")
    return out


# the heads beside the move's and the flag's, each optional in the weights: (its classes'
# field, its arrays' prefix)
_HEADS = (("feelings", "feeling"), ("keenness", "keen"))
SENTENCE_HEADS = ("move", "frustration", "feeling", "keen")  # those the embedding may restack


class Row(NamedTuple):
    """One message as every head reads it: its sparse TF-IDF row (sublinear tf,
    l2-normalised) and, where the weights use one and the encoder loads, its sentence
    embedding as fitted (centred, unit length, scaled)."""

    idx: np.ndarray  # (n,) feature indices
    values: np.ndarray  # (n,)
    sentence: np.ndarray | None = None  # (D,)


@dataclass(frozen=True)
class MoveModel:
    """The shipped weights: a vocabulary with its IDF, a move head and a frustration head, and
    optionally the feeling and keenness heads and each head's weights on the sentence
    embedding (`tutor.sentences`)."""

    vocab: dict[str, int]
    idf: np.ndarray  # (F,)
    kinds: tuple[str, ...]
    move_coef: np.ndarray  # (F, K)
    move_bias: np.ndarray  # (K,)
    frustration_coef: np.ndarray  # (F,)
    frustration_bias: float
    feelings: tuple[str, ...] = ()  # the feeling a vent says; () in weights without that head
    feeling_coef: np.ndarray | None = None  # (F, E)
    feeling_bias: np.ndarray | None = None  # (E,)
    keenness: tuple[str, ...] = ()  # how "too easy" is said; () in weights without that head
    keen_coef: np.ndarray | None = None  # (F, 3)
    keen_bias: np.ndarray | None = None  # (3,)
    # the sentence embedding's part, stacked on each head: the encoder's version it was fitted
    # on ("" for none), the train messages' mean embedding, the scale after centring, and per
    # head (a, w, b): its logits become logits @ a + sentence @ w + b
    sentence_encoder: str = ""
    sentence_mean: np.ndarray | None = None  # (D,)
    sentence_scale: float = 1.0
    sentence_heads: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict)  # head -> (K, K) or (1, 1), (D, K) or (D, 1), (K,) or (1,)

    def vector(self, text: str, question_waiting: bool) -> Row:
        """The message as the heads read it (`Row`)."""
        counts: dict[int, int] = {}
        for f in features(text, question_waiting):
            i = self.vocab.get(f)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        sentence = self.sentence(text) if self.sentence_heads else None
        if not counts:
            return Row(np.zeros(0, dtype=np.int64), np.zeros(0), sentence)
        idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[idx]
        return Row(idx, values / np.linalg.norm(values), sentence)

    def sentence(self, text: str) -> np.ndarray | None:
        """The message's sentence embedding as the heads were fitted on it; None where the
        weights have no sentence part or the encoder that they were fitted on is not here."""
        if self.sentence_mean is None or not _encoder_matches(self.sentence_encoder):
            return None
        e = sentences.embed(text)  # read, as the n-grams are, from its first MAX_CHARS
        return None if e is None else center(e[None], self.sentence_mean,
                                              self.sentence_scale)[0]

    def predict(self, text: str, question_waiting: bool, *, row: Row | None = None,
                ) -> tuple[dict[str, float], float]:
        """Probabilities of each move, and the probability that the student is frustrated
        (`row`: the message's `vector`, when the caller already has it)."""
        row = row if row is not None else self.vector(text, question_waiting)
        logits = self._logits(row, "move", self.move_coef, self.move_bias)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        z = float(self._logits(row, "frustration", self.frustration_coef,
                               self.frustration_bias))
        return dict(zip(self.kinds, p.tolist())), 1.0 / (1.0 + np.exp(-z))

    def feeling(self, text: str, question_waiting: bool, *,
                row: Row | None = None) -> dict[str, float] | None:
        """Probabilities of the feeling a `vent` message says; None without that head."""
        return self._head("feeling", self.feelings, self.feeling_coef, self.feeling_bias,
                          text, question_waiting, row)

    def keen(self, text: str, question_waiting: bool, *,
             row: Row | None = None) -> dict[str, float] | None:
        """Probabilities of how a `too_easy` message is said: `keen` (eager for a challenge,
        "this is fun can i do a harder one"), `bored` (a complaint, "these are year 5 stuff")
        or `plain` ("give me a harder one"); None without that head."""
        return self._head("keen", self.keenness, self.keen_coef, self.keen_bias, text,
                          question_waiting, row)

    def _logits(self, row: Row, head: str, coef: np.ndarray, bias):
        """A head's logits from the n-grams, restacked with the sentence embedding where the
        weights have that part and the row carries one."""
        out = row.values @ coef[row.idx] + bias
        stacked = self.sentence_heads.get(head)
        if stacked is None or row.sentence is None:
            return out
        a, w, b = stacked
        out = np.atleast_1d(out) @ a + row.sentence @ w + b
        return out if np.ndim(bias) else float(out[0])

    def _head(self, head: str, classes: tuple[str, ...], coef: np.ndarray | None,
              bias: np.ndarray | None, text: str, question_waiting: bool,
              row: Row | None) -> dict[str, float] | None:
        """One optional head's softmax over its classes (None where the weights lack it)."""
        if coef is None:
            return None
        row = row if row is not None else self.vector(text, question_waiting)
        logits = self._logits(row, head, coef, bias)
        p = np.exp(logits - logits.max())
        return dict(zip(classes, (p / p.sum()).tolist()))

    def save(self, path: Path) -> None:
        names = sorted(self.vocab, key=self.vocab.get)
        heads = {}
        for label, name in _HEADS:
            if getattr(self, f"{name}_coef") is not None:
                heads |= {label: np.array(getattr(self, label)),
                          f"{name}_coef": getattr(self, f"{name}_coef").astype(np.float32),
                          f"{name}_bias": getattr(self, f"{name}_bias").astype(np.float32)}
        if self.sentence_mean is not None:
            heads |= {"sentence_encoder": np.array(self.sentence_encoder),
                      "sentence_mean": self.sentence_mean.astype(np.float32),
                      "sentence_scale": np.array([self.sentence_scale], dtype=np.float32)}
            for head, arrays in self.sentence_heads.items():
                heads |= {f"sentence_{head}_{part}": x.astype(np.float32)
                          for part, x in zip(("in", "coef", "bias"), arrays)}
        np.savez_compressed(
            path, vocab=np.array(names), idf=self.idf.astype(np.float32),
            kinds=np.array(self.kinds), move_coef=self.move_coef.astype(np.float32),
            move_bias=self.move_bias.astype(np.float32),
            frustration_coef=self.frustration_coef.astype(np.float32),
            frustration_bias=np.array([self.frustration_bias], dtype=np.float32), **heads)


def center(e: np.ndarray, mean: np.ndarray, scale: float) -> np.ndarray:
    """Sentence embeddings (N, D) as the heads read them: less the train messages' mean,
    made unit length again, times `scale` (their weight beside a TF-IDF row's)."""
    e = e - mean
    return scale * e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)


@lru_cache(maxsize=None)
def _encoder_matches(fitted_on: str) -> bool:
    """Whether the installed encoder is the one the weights were fitted on (logged once when
    not: a different encoder's numbers would be misread, so the n-grams are read alone)."""
    here = sentences.encoder_version()
    if here == fitted_on:
        return True
    log.warning("the move classifier was fitted on %s %s, and %s is installed here: moves are "
                "read from their words and letters alone", sentences.ENCODER, fitted_on,
                here or "none")
    return False


@lru_cache(maxsize=4)
def load_model(path: str | Path = MODEL_PATH) -> MoveModel:
    """The fitted classifier (`tools/train_moves.py` writes it)."""
    with np.load(path, allow_pickle=False) as z:
        sentence = {}
        if "sentence_mean" in z.files:
            sentence = {
                "sentence_encoder": str(z["sentence_encoder"]),
                "sentence_mean": z["sentence_mean"].astype(np.float64),
                "sentence_scale": float(z["sentence_scale"][0]),
                "sentence_heads": {
                    head: tuple(z[f"sentence_{head}_{part}"].astype(np.float64)
                                for part in ("in", "coef", "bias"))
                    for head in SENTENCE_HEADS if f"sentence_{head}_in" in z.files}}
        return MoveModel(
            vocab={name: i for i, name in enumerate(z["vocab"].tolist())},
            idf=z["idf"].astype(np.float64), kinds=tuple(z["kinds"].tolist()),
            move_coef=z["move_coef"].astype(np.float64),
            move_bias=z["move_bias"].astype(np.float64),
            frustration_coef=z["frustration_coef"].astype(np.float64),
            frustration_bias=float(z["frustration_bias"][0]),
            **{k: v for label, name in _HEADS if f"{name}_coef" in z.files
               for k, v in ((label, tuple(z[label].tolist())),
                            (f"{name}_coef", z[f"{name}_coef"].astype(np.float64)),
                            (f"{name}_bias", z[f"{name}_bias"].astype(np.float64)))},
            **sentence)
