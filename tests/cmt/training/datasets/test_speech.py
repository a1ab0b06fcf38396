from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cmt.contract import EMOTIONS
from cmt.training.datasets.speech import actor_split, load_emodb, load_iemocap, load_meld_clips, load_ravdess


def _wav(path, seconds=0.2, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.1 * np.sin(2 * np.pi * 220 * t), sr)
    return path


def test_ravdess_layout_labels_and_actor_split(tmp_path):
    _wav(tmp_path / "Actor_01" / "03-01-02-01-01-01-01.wav")  # calm -> neutral
    _wav(tmp_path / "Actor_01" / "03-01-03-02-02-01-01.wav")  # happy -> joy
    _wav(tmp_path / "Actor_20" / "03-01-05-01-01-02-20.flac")  # angry -> anger
    _wav(tmp_path / "Actor_20" / "03-02-04-01-01-01-20.wav")  # song: left out by default
    _wav(tmp_path / "Actor_20" / "notes.wav")  # not a RAVDESS name: ignored
    ex = load_ravdess(tmp_path)
    assert sorted(e.label for e in ex) == ["anger", "joy", "neutral"]
    assert {e.group for e in ex} == {"01", "20"}
    happy = next(e for e in ex if e.label == "joy")
    assert happy.meta["intensity"] == 2 and happy.meta["statement"] == 2
    assert len(load_ravdess(tmp_path, include_song=True)) == 4
    train, dev = actor_split(ex, dev_actors=(20,))
    assert [e.group for e in dev] == ["20"] and {e.group for e in train} == {"01"}
    with pytest.raises(ValueError, match="dev speakers"):
        actor_split(ex, dev_actors=(7,))


def test_emodb_letters_and_speakers(tmp_path):
    for name in ("03a01Fa", "03a01Wa", "08b02La", "16a05Tc", "11a02Eb", "09b03Ab", "10a04Nd"):
        _wav(tmp_path / "wav" / f"{name}.wav")
    ex = {e.audio_path.stem: e for e in load_emodb(tmp_path)}
    assert ex["03a01Fa"].label == "joy" and ex["03a01Wa"].label == "anger"
    assert ex["08b02La"].label == "neutral"  # boredom merged into neutral
    assert ex["16a05Tc"].label == "sadness" and ex["11a02Eb"].label == "disgust"
    assert ex["09b03Ab"].label == "fear" and ex["10a04Nd"].label == "neutral"
    assert ex["08b02La"].group == "08"


def test_iemocap_sessions_labels_text(tmp_path):
    s1 = tmp_path / "Session1"
    (s1 / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (s1 / "dialog" / "transcriptions").mkdir(parents=True)
    (s1 / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_M001\texc\t[3.5000, 3.5000, 3.0000]\n"
        "[12.0 - 13.0]\tSes01F_impro01_F002\tfru\t[2.0, 3.0, 3.0]\n"
        "[14.0 - 15.0]\tSes01F_impro01_F003\tang\t[2.0, 4.0, 4.0]\n")
    (s1 / "dialog" / "transcriptions" / "Ses01F_impro01.txt").write_text(
        "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n"
        "Ses01F_impro01_M001 [010.0100-011.3925]: Do you have your forms?\n")
    wavs = s1 / "sentences" / "wav" / "Ses01F_impro01"
    for utt in ("F000", "M001", "F002"):  # F003 has no audio: left out
        _wav(wavs / f"Ses01F_impro01_{utt}.wav")
    ex = load_iemocap(tmp_path)
    assert [(e.label, e.group, e.text) for e in ex] == [
        ("neutral", "Ses01F", "Excuse me."), ("joy", "Ses01M", "Do you have your forms?")]


def test_meld_clip_index(tmp_path):
    (tmp_path / "train_splits").mkdir()
    for name in ("dia0_utt0.mp4", "dia0_utt1.mp4", "dia1_utt0.mp4", "._dia1_utt0.mp4"):
        (tmp_path / "train_splits" / name).write_bytes(b"not decoded here")
    (tmp_path / "train_sent_emo.csv").write_text(
        "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
        "1,Hi there,Ross,neutral,neutral,0,0\n"
        "2,Oh my God!,Rachel,surprise,positive,0,1\n"
        "3,No clip for this one,Joey,joy,positive,0,2\n"
        "4,I hate this,Monica,anger,negative,1,0\n")
    ex = load_meld_clips(tmp_path, "train")
    assert [(e.group, e.label, e.text) for e in ex] == [
        ("dia0", "neutral", "Hi there"), ("dia0", "surprise", "Oh my God!"),
        ("dia1", "anger", "I hate this")]
    assert ex[1].context == ("Hi there",) and ex[1].audio_path.name == "dia0_utt1.mp4"
    assert all(e.label in EMOTIONS for e in ex)
    with pytest.raises(FileNotFoundError, match="dev"):
        load_meld_clips(tmp_path, "dev")


@pytest.mark.shared
def test_real_ravdess(datasets_dir):
    ex = load_ravdess(datasets_dir / "ravdess")
    assert len(ex) == 1200 and len({e.group for e in ex}) == 20
    assert {e.label for e in ex} == set(EMOTIONS)  # calm merged, all seven present
    train, dev = actor_split(ex, dev_actors=(17, 18, 19, 20))
    assert len(dev) == 240 and len(train) == 960


def test_an_augmented_clip_is_a_degraded_copy_the_same_for_a_seed():
    from pathlib import Path

    from cmt.training.datasets.augment import augment_clip
    from cmt.training.corpora import augmented

    t = np.arange(32000) / 16000
    clip = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    a, b = augment_clip(clip, seed=3), augment_clip(clip, seed=3)
    assert np.array_equal(a, b) and a.dtype == np.float32 and np.abs(a).max() <= 1.0
    assert 0.85 * clip.size < a.size < 1.15 * clip.size  # a speed change of at most 10 %
    assert not np.array_equal(augment_clip(clip, seed=4), a)
    from cmt.model.labels import Example

    items = [Example(label="joy", audio_path=Path(f"/x/{i}.wav"), group="1") for i in range(3)]
    copies = augmented(items, 2)
    assert len(copies) == 6 and len({e.meta["augment_seed"] for e in copies}) == 6
