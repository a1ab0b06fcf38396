"""Build the labelled student messages and fit the move classifier.

    PYTHONPATH=. python tools/train_moves.py            # data/moves/{train,dev}.jsonl + model.npz
    PYTHONPATH=. python tools/train_moves.py --cv       # only cross-validate C on train

1. `data/moves/messages.txt` (hand-written, one message a line under `## <move> [noq]`
   headers; `! ` marks a frustrated message, ` => x` the answer it gives) becomes
   `train.jsonl` and `dev.jsonl`. Each message goes to dev when a hash of its text says so
   (a fixed fifth; the hash is of `near_copy_key`, so "stuck stuck!!" and "STUCK" share a split), and some get one noisy copy (a typo, a stretched letter, a dropped capital)
   that stays in its original's split, so dev never holds a near-copy of a train message.
2. scikit-learn fits linear SVMs for the move, for frustration, on the vents of train for
   the feeling a vent says (`feelings.txt`) and on its `too_easy` messages for how a request
   for harder work is made (`keenness.txt`), over `tutor.moves.features`, their margins
   made probabilities by temperatures and Platt scaling fitted by cross-validation within
   train (`fit`); then each head is stacked with the messages' multilingual sentence
   embeddings (`tutor.sentences`; `--no-sentence` leaves them out), and the weights go to
   `data/moves/model.npz` for `tutor.moves` to use with numpy alone. Deterministic: the same
   files give the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor import sentences  # noqa: E402
from tutor.intents import FRUSTRATED_AT  # noqa: E402
from tutor.moves import MOVES_DIR, MoveModel, center, features  # noqa: E402

DEV_SHARE = 5  # one message in DEV_SHARE goes to dev
FEELINGS = ("angry", "bored", "down", "glad", "worry")  # what a vent says (feelings.txt)
KEENNESS = ("bored", "keen", "plain")  # how "too easy" is said (keenness.txt)
# The SVMs' C, chosen by --cv (5 folds of train): move 0.885 at 2, 0.884 at 1 and 3, and a
# logistic regression (C 30) 0.877 on the first fold alone
C_MOVE = 2.0
C_FRUSTRATION = 2.0
# The sentence embedding's stacker (a logistic regression on a head's held-out logits and the
# embedding): its C and the embedding's scale, chosen on train's first cross-validation fold
# (move, flag): C 1, scale 1: 0.9005, 0.9246; scale 0.5: 0.8967, 0.9239; scale 2: 0.9012,
# 0.9237; C 0.3, scale 0.5, 1, 2: move 0.8900, 0.8974, 0.9004
C_SENTENCE = 1.0
SENTENCE_SCALE = 1.0
# the embeddings already computed (not shipped): the user's cache folder
SENTENCE_CACHE = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                  / "attune" / "move_sentences.npz")
NOISY_COPY = 0.6  # share of messages that also get a noisy copy
SEED = 17


def _h(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def same_message(text: str) -> str:
    """Messages that differ only in case, punctuation or spacing are one message."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split()) or text.strip()


def near_copy_key(text: str) -> str:
    """One key for a message and its near-copies: case, punctuation, stretched letters and
    repeated words aside ("stuck stuck stuck!!", "STUCK" and "stuckk" share one)."""
    words = re.sub(r"(.)\1+", r"\1", same_message(re.sub(r"['’]", "", text))).split()
    return " ".join(w for i, w in enumerate(words) if i == 0 or w != words[i - 1])


def read_messages(path: Path) -> list[dict]:
    rows, move, waiting = [], None, True
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("## "):
            head = line[3:].split()
            move, waiting = head[0], "noq" not in head[1:]
            continue
        if not line.strip():
            continue
        if move is None:
            raise SystemExit(f"{path}:{n}: a message before any '## move' header")
        frustrated = line.startswith("! ")
        text = line[2:] if frustrated else line
        answer = None
        if " => " in text:
            text, answer = text.split(" => ", 1)
        rows.append({"text": text, "move": move, "frustrated": frustrated,
                     "question_waiting": waiting, "answer": answer})
    return rows


def _noisy(row: dict, rng: random.Random) -> str | None:
    """One realistic slip of the keyboard, or None when none fits."""
    text = row["text"]
    ops = ["swap", "drop", "stretch"]
    if not row["frustrated"]:  # shouting and marks are part of a frustrated message's meaning
        ops += ["lower", "capital"]
    if row["move"] == "answer":  # a typo could change the answer; only the case may change
        ops = [o for o in ops if o in ("lower", "capital")]
    rng.shuffle(ops)
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 4]
    for op in ops:
        if op == "lower" and (text.lower() != text or text[-1:] in ".!?"):
            return text.lower().rstrip(".!?")
        if op == "capital" and text[:1].islower():
            end = "" if text[-1:] in ".!?" else rng.choice(["", ".", "?"])
            return text[:1].upper() + text[1:] + end
        if op in ("swap", "drop", "stretch") and long:
            i = rng.choice(long)
            w = words[i]
            j = rng.randrange(1, len(w) - 1)
            if op == "swap":
                w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
            elif op == "drop":
                w = w[:j] + w[j + 1:]
            else:
                w = w + w[-1] * rng.randint(2, 3)
            return " ".join(words[:i] + [w] + words[i + 1:])
    return None


def build(source: Path, out_dir: Path) -> tuple[list[dict], list[dict]]:
    rows = read_messages(source)
    seen: dict[tuple[str, bool], dict] = {}
    for r in rows:
        key = (r["text"], r["question_waiting"])
        if key in seen and (seen[key]["move"], seen[key]["frustrated"]) != (
                r["move"], r["frustrated"]):
            raise SystemExit(f"{r['text']!r} is labelled twice, differently")
        seen[key] = r
    train, dev = [], []
    taken = {same_message(text) for text, _ in seen}
    in_dev = {key: _h(key) % DEV_SHARE == 0 for key in {near_copy_key(text) for text, _ in seen}}
    for r in seen.values():
        group = near_copy_key(r["text"])
        split = dev if in_dev[group] else train
        r = dict(r, _group=group)
        split.append(r)
        rng = random.Random(SEED + _h(r["text"] + r["move"]))
        if rng.random() < NOISY_COPY:
            noisy = _noisy(r, rng)
            # a noisy copy that reads as another message of the other split stays out
            if noisy and same_message(noisy) not in taken and in_dev.get(
                    near_copy_key(noisy), in_dev[group]) == in_dev[group]:
                taken.add(same_message(noisy))
                split.append(dict(r, text=noisy))
    for name, split in (("train", train), ("dev", dev)):
        with open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in split:
                row = {k: v for k, v in r.items() if not k.startswith("_")}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return train, dev


def read_tags(path: Path, tags: tuple[str, ...]) -> dict[str, str]:
    """"<tag><TAB><message>" lines -> {message: tag}."""
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        tag, sep, text = line.partition("\t")
        if not sep or tag not in tags:
            raise SystemExit(f"{path}:{n}: not '<tag><TAB><message>' with a tag of {tags}")
        out[text] = tag
    return out


def read_feelings(path: Path) -> dict[str, str]:
    """`feelings.txt`: "<feeling><TAB><vent message>" lines -> {message: feeling}. Tiredness
    is read with boredom (low energy: `tired` and `bored` are one class, `bored`), and a
    message with no clear feeling (`other`) is left out."""
    return {text: "bored" if feeling == "tired" else feeling
            for text, feeling in read_tags(path, FEELINGS + ("tired", "other")).items()
            if feeling != "other"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def fit(train: list[dict], *, c_move: float = C_MOVE, c_frustration: float = C_FRUSTRATION,
        calibrate: bool = True, feelings: dict[str, str] | None = None,
        keenness: dict[str, str] | None = None, sentence: np.ndarray | None = None,
        c_sentence: float = C_SENTENCE, sentence_scale: float = SENTENCE_SCALE) -> MoveModel:
    """Linear SVMs over the TF-IDF features (the move: one against the rest, classes balanced;
    the frustration flag: one), then their margins made probabilities: one temperature for the
    moves' softmax and Platt's a, b for the flag, fitted on margins that 5-fold
    cross-validation within `train` gives (a message and its noisy copy in one fold). Both are
    folded into the weights, so the model is still one linear map and a softmax/sigmoid.
    With `feelings` ({vent message: feeling}), a third SVM learns the feeling on the vents of
    `train`, tempered the same way; with `keenness` ({too_easy message: keen, bored or
    plain}), a fourth learns it on the `too_easy` messages.

    With `sentence` (train's sentence embeddings, (N, D), from `tutor.sentences`), each head
    is then stacked: a logistic regression reads its held-out logits beside the centred
    embedding, so the n-gram heads stand alone where the encoder is missing."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    docs = [(r["text"], r["question_waiting"]) for r in train]
    vec = TfidfVectorizer(analyzer=lambda d: features(*d), sublinear_tf=True, min_df=1)
    x = vec.fit_transform(docs)
    y = np.array([r["move"] for r in train])
    f = np.array([r["frustrated"] for r in train])
    moves = LinearSVC(C=c_move, class_weight="balanced").fit(x, y)
    frustration = LinearSVC(C=c_frustration).fit(x, f)
    t, (a, b) = 1.0, (1.0, 0.0)
    fold = np.array([_h(near_copy_key(r["text"]) + "#cal") % 5 for r in train])
    held = {}  # head -> its held-out logits on train, as the shipped weights would give them
    if calibrate or sentence is not None:
        margins = _held_out_margins(
            lambda: LinearSVC(C=c_move, class_weight="balanced"), x, y, fold)
        t = _temperature(margins, np.searchsorted(moves.classes_, y))
        flag_margins = _held_out_margins(lambda: LinearSVC(C=c_frustration), x, f, fold)
        a, b = _platt(flag_margins, f)
        held |= {"move": (margins * t, y, slice(None)),
                 "frustration": ((flag_margins * a + b)[:, None], f, slice(None))}
    heads = {}
    for move, tags, label, name in (("vent", feelings, "feelings", "feeling"),
                                    ("too_easy", keenness, "keenness", "keen")):
        # its own head over the same features, on that move's messages alone
        said = [i for i, r in enumerate(train) if r["move"] == move and r["text"] in (tags or {})]
        if not said:
            continue
        xs, ys = x[said], np.array([tags[train[i]["text"]] for i in said])
        head = LinearSVC(C=c_move, class_weight="balanced").fit(xs, ys)
        th = 1.0
        if calibrate or sentence is not None:
            margins = _held_out_margins(
                lambda: LinearSVC(C=c_move, class_weight="balanced"), xs, ys, fold[said])
            th = _temperature(margins, np.searchsorted(head.classes_, ys))
            held[name] = (margins * th, ys, said)
        heads |= {label: tuple(head.classes_.tolist()), f"{name}_coef": head.coef_.T * th,
                  f"{name}_bias": head.intercept_ * th}
    if sentence is not None:
        mean = sentence.mean(0)
        e = center(sentence, mean, sentence_scale)
        heads |= {"sentence_encoder": sentences.encoder_version() or "",
                  "sentence_mean": mean.astype(np.float64), "sentence_scale": sentence_scale,
                  "sentence_heads": {head: _stack(logits, e[rows], truth, c_sentence)
                                     for head, (logits, truth, rows) in held.items()}}
    return MoveModel(
        vocab={k: int(v) for k, v in vec.vocabulary_.items()}, idf=vec.idf_,
        kinds=tuple(moves.classes_.tolist()), move_coef=moves.coef_.T * t,
        move_bias=moves.intercept_ * t, frustration_coef=frustration.coef_[0] * a,
        frustration_bias=float(frustration.intercept_[0] * a + b), **heads)


def _stack(logits: np.ndarray, e: np.ndarray, truth: np.ndarray, c: float):
    """A head's (a, w, b) that read its logits (N, K) beside the embedding (N, D): a
    logistic regression's weights, for `MoveModel._logits` (a binary head's K is 1)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=3000).fit(np.hstack([logits, e]), truth)
    k = logits.shape[1]
    coef = lr.coef_.T  # (K + D, classes), or (K + D, 1) for a binary head
    return coef[:k], coef[k:], lr.intercept_


def embeddings(texts: list[str], cache: Path | None = SENTENCE_CACHE) -> np.ndarray:
    """`tutor.sentences` embeddings of `texts` (N, D), the ones computed before read from
    `cache` (kept per encoder version; the rest are computed, minutes for thousands, and
    added to it)."""
    version = sentences.encoder_version()
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["version"]) == version:
                known = dict(zip(z["texts"].tolist(), z["vectors"]))
    todo = sorted({t for t in texts if t not in known})
    if todo:
        print(f"embedding {len(todo)} messages ({sentences.ENCODER} {version})", flush=True)
        known |= dict(zip(todo, sentences.embed_many(todo)))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            names = sorted(known)
            np.savez(cache, version=np.array(version), texts=np.array(names),
                     vectors=np.stack([known[n] for n in names]).astype(np.float32))
    return np.stack([known[t] for t in texts]) if texts else np.zeros((0, sentences.DIM))


def _held_out_margins(make, x, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each row's SVM margins from a model (`make()`) fitted on the other folds."""
    out = None
    for k in range(5):
        margins = make().fit(x[fold != k], y[fold != k]).decision_function(x[fold == k])
        if out is None:
            out = np.zeros((len(y), *margins.shape[1:]))
        out[fold == k] = margins
    return out


def _temperature(margins: np.ndarray, target: np.ndarray) -> float:
    """The t > 0 that minimises the cross-entropy of softmax(t * margins)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        z = margins * np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(z)), target]))

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 5), method="bounded").x))


def _platt(margin: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Platt scaling: a, b of sigmoid(a * margin + b), by logistic regression on the margins."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6).fit(margin[:, None], truth)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def cross_validate(train: list[dict], folds: int = 5, thresholds=(0.5,),
                   **fit_args) -> tuple[float, dict[float, float]]:
    """Move accuracy and, per flag threshold, frustration accuracy of `fit(**fit_args)` over
    `folds` folds of train alone; a message and its noisy copy always share a fold."""
    move_ok, frus_ok = 0, dict.fromkeys(thresholds, 0)
    for k in range(folds):
        held = [r for r in train if _h(r["_group"] + "#cv") % folds == k]
        model = fit([r for r in train if _h(r["_group"] + "#cv") % folds != k], **fit_args)
        for r in held:
            p, pf = model.predict(r["text"], r["question_waiting"])
            move_ok += max(p, key=p.get) == r["move"]
            for t in thresholds:
                frus_ok[t] += (pf >= t) == r["frustrated"]
    return move_ok / len(train), {t: n / len(train) for t, n in frus_ok.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=MOVES_DIR / "messages.txt")
    ap.add_argument("--out", type=Path, default=MOVES_DIR)
    ap.add_argument("--cv", action="store_true",
                    help="only cross-validate C on train (5 folds); write nothing but the splits")
    ap.add_argument("--no-sentence", action="store_true",
                    help="fit the n-gram heads alone, without the sentence embedding")
    args = ap.parse_args()
    train, dev = build(args.source, args.out)
    if args.cv:
        for c in (1.0, 2.0, 3.0):
            m, f = cross_validate(train, thresholds=(0.3, 0.35, 0.4, 0.5), c_move=c,
                                  c_frustration=c)
            flags = ", ".join(f"{acc:.3f} at {t:g}" for t, acc in f.items())
            print(f"C {c:g}: cross-validated on train: move {m:.3f}, frustrated {flags}")
        return
    feelings = read_feelings(args.source.with_name("feelings.txt"))
    keenness = read_tags(args.source.with_name("keenness.txt"), KEENNESS)
    sentence = None if args.no_sentence else embeddings([r["text"] for r in train])
    model = fit(train, feelings=feelings, keenness=keenness, sentence=sentence)
    model.save(args.out / "model.npz")
    kinds = sorted({r["move"] for r in train + dev})
    print(f"messages: train {len(train)}, dev {len(dev)}; moves: {', '.join(kinds)}")
    print(f"features: {len(model.vocab)}; weights: {args.out / 'model.npz'}")
    if model.sentence_heads:
        print("the n-gram heads alone (as where the sentence encoder is missing):")
        report(replace(model, sentence_heads={}), dev, feelings, keenness)
        print("with the sentence embedding:")
    report(model, dev, feelings, keenness)


def report(model: MoveModel, dev: list[dict], feelings: dict[str, str],
           keenness: dict[str, str]) -> None:
    """The classifier's own figures on dev (no rules): move, flag, a vent's feeling, keenness."""
    move_ok = frus_ok = 0
    for r in dev:
        p, pf = model.predict(r["text"], r["question_waiting"])
        move_ok += max(p, key=p.get) == r["move"]
        frus_ok += (pf >= FRUSTRATED_AT) == r["frustrated"]
    print(f"dev, the classifier alone (no rules): move {move_ok / len(dev):.3f}, "
          f"frustrated {frus_ok / len(dev):.3f}")
    said = [r for r in dev if r["move"] == "vent" and r["text"] in feelings]
    if said:
        ok = sum(max(p := model.feeling(r["text"], r["question_waiting"]), key=p.get)
                 == feelings[r["text"]] for r in said)
        print(f"dev vents, the feeling they say: {ok / len(said):.3f} ({ok}/{len(said)})")
    asked = [r for r in dev if r["move"] == "too_easy" and r["text"] in keenness]
    if asked:
        ok = sum(max(p := model.keen(r["text"], r["question_waiting"]), key=p.get)
                 == keenness[r["text"]] for r in asked)
        print(f"dev too_easy, how it is said: {ok / len(asked):.3f} ({ok}/{len(asked)})")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
