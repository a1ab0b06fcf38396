"""Numbers spelled in other languages: read where the words are a number, and never where
an everyday word only looks like one."""

from __future__ import annotations

import pytest

from tutor.answers import check_answer, extract_answer, is_only_an_answer
from tutor.curriculum import Question
from tutor.intents import classify_move
from tutor.numerals import lexicon, spelled


@pytest.mark.parametrize("text,value", [
    ("tres cuartos", "3/4"),  # Spanish: a count of the ordinal's parts
    ("drei Viertel", "3/4"),
    ("deux tiers", "2/3"),  # a fraction word that is not the ordinal ("troisième")
    ("dois terços", "2/3"),
    ("menos cinco", "-5"),
    ("minus pyat", "-5"),  # Russian typed in Latin letters
    ("cero coma cinco", "0.5"),
    ("sept virgule zéro cinq", "7.05"),
    ("deux et demi", "2 1/2"),  # "et" is also Danish for one: here it joins
    ("iki buçuk", "2 1/2"),
    ("fünfundzwanzig prozent", "25%"),
    ("двадцать пять процентов", "25%"),
    ("三分之二", "2/3"),  # the bottom first
    ("이분의 일", "1/2"),
    ("百分之三十", "30%"),
    ("một phần hai", "1/2"),
    ("dua per tiga", "2/3"),
    ("once doceavos", "11/12"),
    ("zero vírgula quatro", "0.4"),  # English "zero", but the rest is Portuguese
    ("i think its cinco", "5"),
    ("ciento veinte", "120"),  # "ciento" is a hundred only before another number
    ("duzentos e cinquenta", "250"),
    ("тысяча двести", "1200"),
    ("dreihundertzwanzig", "320"),  # one word, read by its parts
    ("два с половиной", "2 1/2"),
    ("dua setengah", "2 1/2"),  # a half after a number adds to it here
    ("ढाई", "2 1/2"),
    ("零点五", "0.5"),
    ("答案是四分之三", "3/4"),
    ("kirk iki", "42"),  # "kırk" on an English keyboard
    ("yüzde yirmi beş", "25%"),
    ("3 huitièmes", "3/8"),  # digits before another language's fraction word
    ("x равно 9", "x = 9"),
    ("my phone is on 2%", "2%"),  # "on" is ten in Turkish, but digits typed stand alone
    ("สองส่วนสาม", "2/3"),  # Thai, no spaces: two parts of three
    ("สี่สิบเปอร์เซ็นต์", "40%"),
    ("sifir virgul yirmi bes", "0.25"),  # "virgül" typed without its accent
    ("beşte iki", "2/5"),  # Turkish: of five, two
])
def test_spelled_answers_are_read_as_their_value(text, value):
    assert extract_answer(text) == value


@pytest.mark.parametrize("text", [
    "ok i try", "je dois y aller", "tengo dos hermanos", "eres un robot?", "네", "이거 뭐야",
    "do robots get tired", "the top goes on the bottom", "i did it once", "hai", "robo tatu",
    "can we change to decimals", "ma olen matas nii halb", "i cant do it!!", "im on fire",
    "안녕하세요오오",
    "nulle xyzzy pieci",  # two numbers and a word between unread: which is the answer?
])
def test_everyday_words_that_look_like_numbers_are_not_read(text):
    assert extract_answer(text) is None


def test_a_lone_word_that_may_be_an_everyday_word_is_left_to_the_classifier():
    assert spelled("dos") is None and spelled("minus dos").text == "-2"
    assert is_only_an_answer("dezasseis") and is_only_an_answer("is it neunzehn?")
    assert is_only_an_answer("十五") and is_only_an_answer("пятнадцать")
    # numbers, and also "no" (Vietnamese), "lame" (French), "give" (Hindi): not an answer by rule
    for word in ("không", "nulle", "दो", "cinco"):
        assert spelled(word) is not None and not is_only_an_answer(word), word
    assert is_only_an_answer("tres cuartos") and is_only_an_answer("menos tres??")
    move = classify_move("drei Viertel", expecting_answer=True)
    assert (move.kind, move.answer) == ("answer", "3/4")


def test_a_spelled_answer_is_checked_by_its_value_in_any_of_the_languages():
    question = Question(id="q", prompt="What is 6/8 simplified?", hints=["halve"],
                        kind="fraction", answer="3/4")
    for said in ("tres cuartos", "trois quarts", "drei Viertel", "tre quarti", "три четверти",
                 "四分之三", "0,75", "cero coma setenta y cinco"):
        assert check_answer(question, said).correct, said
    assert not check_answer(question, "dos tercios").correct


def test_a_word_languages_disagree_on_has_the_value_most_languages_give_it():
    cardinals = lexicon()[0]
    assert cardinals["tres"] == 3  # Spanish and Catalan, not Danish 60
    assert cardinals["elf"] == 11  # German, Dutch, Afrikaans, not Maltese 1000
