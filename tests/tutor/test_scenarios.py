"""The shipped scenario suite: each file states what the adaptive tutor should do with its
scripted student (`expect`), and the control arm never adapts on any of them."""

from __future__ import annotations

import json

import pytest

from tutor.simulate import SCENARIOS_DIR, load_scenario, main, run_scenario, unmet

FILES = sorted(SCENARIOS_DIR.glob("*.yaml"))
# Scripted students written by others who never saw the tutor's code (data/scenarios/others);
# the ones the tutor gets wrong are named, so that fixing one, or another breaking, is seen.
OTHERS = sorted((SCENARIOS_DIR / "others").glob("*.yaml"))
OTHERS_MISSED = {  # with the shipped model reading the words, as the app does
    "b07_sarcasm_flat": "sarcasm read as joy",
    "c13_polish_keeps_skipping": "boredom noticed one turn after the writer's",
    "c14_taglish_sad_face_fine_words": "change style on at most 2 turns: changed on 3",
    "d17_sarcastic": "sarcasm read as joy",
    "f06_says_easy": "'easy' said while half the answers go wrong read as boredom",
    "h03_annoyed_saturday": "annoyance at coming on a Saturday not read by turn 3",
    "i07_caps_emoji_excited": "delight in capitals and emoji not read by turn 5",
    "j19_politelost": ("a polite 'Oh, sorry. Yes I understand, thank you.' after a first wrong "
                       "answer taken for a slip owned; frustrated, not confused, led when the "
                       "struggling was confirmed, under a frown read as anger: confused not reached"
                       " by turn 9"),
    "l03_josh_back_after_absence": ("'oh no. ok whats wrong with it' after a first wrong answer "
                                    "taken for a slip owned, the words' emotion unread: ended "
                                    "delighted"),
    "m11_laggy_laptop": "annoyance at a freezing laptop not read as frustration",
    "n12_quiet_voice_mumbler": "a quiet, sleepy voice read as fear taken for anxiety",
    "o08_sophie_test_worry": "worry shown through questions ('is this a test') not read by turn 3",
    "o09_andrei_proud_then_cross": "frustration outlasts the recovery",
    "o19_chatty_bored": "chatty boredom with one slip not read as boredom",
    "p08_sent_at_lunch": "sent at lunch, drifting through easy ones: bored not reached by turn 7",
    "q02_syrian_polite_smile": ("'sorry teacher' heard as worry, so a polite boy's wrong answers "
                                "read as worry: confused not reached by turn 8"),
    "r04_same_bottoms_frown": ("calm questions about denominators, a frown read as anger: confused "
                               "not reached by turn 7; entered frustrated at turn 2; ended "
                               "frustrated"),
    "r07_friend_in_frame": ("lost while a friend giggles in frame; one lucky right answer at the "
                            "end is relief: ended engaged, not confused"),
    "r14_long_day_equations": ("'this is doing my head in' after a long day: frustrated not reached"
                               " by turn 12; ended confused"),
    "r15_just_need_the_certificate": ("reach one of ['bored'] by turn 9; end in one of ['bored']: "
                                      "ended engaged"),
    "r16_helping_my_son": ("a dad's 'why do you flip the second one' beside a big laugh read as "
                           "anger, the words unread: entered frustrated and anxious at turn 3"),
    "r17_lamp_light_resting_face": ("'Can we try one with brackets?' from a calm adult heard surely"
                                    " as too easy, plainly asked: entered bored at turn 11"),
    "s02_adhd_drifting": ("drifting off topic, 'zzzz', looking away: bored not reached by turn 10; "
                          "ended engaged"),
    "s08_idiosyncratic_confused": ("a gamer's 'Level 2 has a boss. the boss is brackets' heard as "
                                   "too easy, the words unread: entered bored at turn 5"),
    "s12_tired_after_swimming": ("tired after swimming, yawns read as surprise or sadness: bored "
                                 "not reached by turn 9; entered frustrated at turn 6"),
    "t07_minimal_bored": ("'k', 'ye', then 'idk' after a slow slip read as confusion: bored not "
                          "reached by turn 9"),
    "t11_sarcastic_teen": "sarcasm ('oh joy. fractions.') over right answers: bored not reached",
    "u18_spoken_monotone_bored": ("his spoken answers are numbers that are wrong for the lesson's "
                                  "questions: entered confused at turn 2"),
    "u20_mum_watching_smile": ("worry only in questions ('will you tell her my score', 'is it "
                               "correct? i am not sure'): anxious not reached by turn 8"),
    "v08_phone_drifting": ("on his phone, long gaps, 'k', then one slow slip read as confusion: "
                           "bored not reached by turn 7"),
    "v20_wide_eyed_excited": ("amazed that it is 'actually that easy??' (a glad vent, but flagged "
                              "frustrated), wide eyes read as surprise or fear: delighted not "
                              "reached by turn 7"),
    "w03_phone_under_desk": ("on her phone, minutes between turns, 'lol' (read as joy), 'sry', "
                             "slips from not reading: bored not reached by turn 10"),
    "x02_smiling_sorry_maya": ("a nervous smile read as joy; after her worry was read, an 'ok' "
                               "under the smile switched to delighted at turn 9"),
    "x04_swearing_kez": ("swearing for joy flagged as frustration and a loud voice read as anger: "
                         "entered frustrated at turn 1; delighted not reached by turn 7"),
    "x06_sofia_espanol": ("Spanish joy misheard ('SIIII lo tengo!!! 😄😄' an ack, 'otra otra! esto es"
                          " facil ahora jajaja' flagged frustrated): delighted not reached by turn "
                          "8"),
    "x07_dim_light_oliver": ("'that was easy peasy' taken for too easy and borne out by the right "
                             "answers: ended bored"),
    "x13_sarcastic_priya": ("sarcastic praise read as joy by the words and the camera: entered "
                            "delighted at turn 1"),
    "x20_caps_walter": ("a frown behind reading glasses read as anger, the words unread: the style "
                        "changed on 2 turns, at most 1 expected"),
    "y01_rainy_bored_sibling": ("boredom never said, replies shrinking and gaps stretching: bored "
                                "not reached by turn 8"),
    "y05_window_glare_fine": "end in one of ['engaged', 'delighted']: ended bored",
    "y16_unsaid_bored_fast": ("instant right answers, 'k' and 'ya', never said: bored not reached "
                              "by turn 10"),
    "y17_oldlaptop_quiet_frustration": ("frustration in 'nvm' and 'forget it' over wrong answers "
                                        "read as confusion: frustrated not reached by turn 9"),
    "y18_exam_worry_correct": ("worry only in questions ('is it bad that took me a minute' read as "
                               "break, 'should i already know this by year 10' as too easy): "
                               "entered bored at turn 8"),
    "z01_finished_early": "finished early, boredom never said: bored not reached by turn 10",
    "z10_headphones_music": ("music in headphones, boredom never said: bored not reached by turn "
                             "10; ended confused"),
    "z11_bus_driver": ("a bus driver's worry only in questions, a Glasgow accent read as anger: "
                       "anxious not reached by turn 7"),
    "za09_watching_the_match": ("the football on, answers taking minutes, 'whats the question "
                                "again', 'how much longer is it': bored not reached by turn 6"),
    "za12_first_thing_ive_passed": ("a prison learner's pride ('get in. thats 4 out of 4' taken for"
                                    " a wrong answer): delighted not reached by turn 8"),
    "za19_yusuf_proud_student": ("a Sudanese learner's pride and thanks, his accent read as anger: "
                                 "delighted at turn 10, not by turn 6"),
    "zb19_olena_confused_frustrated": ("anger with herself in capitals after three wrong answers "
                                       "read as confusion, which outlasts her recovery"),
    "zc13_hinglish_negative_signs": ("a concentration frown read as anger before any right answer: "
                                     "frustrated at turn 2, not confused"),
    "zd15_harsh_old_tutor": ("an adult afraid of being told off, one wrong answer under a face read"
                             " as fear taken for frustration: anxious not reached by turn 5"),
    "zd16_spanish_denominador": ("a frown read as anger over curious 'why' questions: entered "
                                 "frustrated at turn 6"),
    "ze11_romanian-forklift-noise": ("spoken answers over beeping machines, an accent read as "
                                     "anger, a self-corrected slip: the style changed on 2 turns, "
                                     "at most 1 expected"),
    "ze13_somali-bigger-bottom": ("lost on which fraction is bigger, her accent read as fear, the "
                                  "words unread: entered anxious at turn 3"),
    "ze14_punjabi-dont-tell": ("an embarrassed loader's worry in stalls, 'sory' and 'pls dont send "
                               "result to supervisor', 'my son do this easy. me 47 and cant' heard "
                               "as too easy: entered bored at turn 8"),
    "ze16_did-this-in-1985": ("bored in instant right answers, 'yep', 'k' and minutes away, 'we did"
                              " this at school in 1985 mate': bored not reached"),
    "zf06_spanish_loud_room": ("'SÍ! qué chévere, three quarters is bigger!' taken for a wrong "
                               "answer, his excitement in a noisy room heard by the voice as anger:"
                               " delighted not reached by turn 9"),
    "zf08_drifting_bored_behaviour": ("every answer right, 'k', minutes away from the camera: bored"
                                      " at turn 10, not by turn 9"),
    "zf15_one_hand_frustrated": ("'ok lets do this quick b4 break ends' heard as asking for a "
                                 "break; 'ffs this app. 3 times now' after wrong answers leads "
                                 "confusion by less than the margin: frustrated not reached"),
    "zf17_nervous_laugher": ("a nervous laugh and smile over worry ('hahaha kill me. my assessor is"
                             " gonna see these scores right?' heard as gladness): entered delighted"
                             " at turn 6"),
    "zg02_puffed_cheek_pride": ("pride in sign-order English ('ME SOLVE ALONE no help', 'PROUD') "
                                "under mouth shapes read as disgust: delighted not reached by turn "
                                "5"),
    "zg06_same_same": ("boredom shown only in seconds-fast right answers, 'same same' and 'done. "
                       "next': bored not reached by turn 6"),
    "zg09_call_newspaper": ("sarcasm ('wow one right. call newspaper') under a camera reading joy: "
                            "ended engaged, not frustrated"),
    "zg12_nairobi_mechi": ("'too easy' said in Sheng and Swahili ('hii bado ni rahisi') beside fast"
                           " right answers: bored not reached by turn 6"),
    "zh02_siblings_one_laptop": ("never enter ['frustrated', 'anxious', 'confused', 'bored', "
                                 "'delighted']: entered ['delighted'] at turn 2"),
    "zh07_hyperfocus_balance": ("delight put in calm words over a neutral face and voice ('this is "
                                "my favourite thing we have done in co-op' heard as annoyance): "
                                "delighted not reached by turn 9"),
    "zh18_silent_speed_guessing": ("giving up shown only by wrong answers faster and faster (9, 5, "
                                   "3 s) and '?', 'k', 'idk': read as confusion, frustrated not "
                                   "reached"),
    "zh20_exam_relief_tears": ("tears of relief ('OMG i actually get it now 😭😭😭', 'im literally "
                               "gonna cry' flagged frustrated) under a camera reading sadness: "
                               "delighted not reached by turn 10"),
    "zi03_phone_buzzing": ("worry about home ('my brother cant find mums tablets. one sec') heard "
                           "as a break under a camera reading some fear: anxious not reached by "
                           "turn 5"),
    "zi04_quietly_lost": ("one slow right answer after four wrong ones, then 'was that right': back"
                          " to engaged, and the last wrong answer did not bring confusion back: "
                          "ended engaged"),
    "zi10_flat_checked_out": ("boredom shown by 'k', 'cant we just chill' and 'when do we finish' "
                              "(heard as breaks) after 'meh. x = 4 whatever' was read as a "
                              "frustrated wrong answer: ended engaged"),
    "zi15_sarcastic": ("sarcasm with the camera off ('my absolute favourite thing in the world', "
                       "'call the newspapers'), read as joy: neither bored nor frustrated by "
                       "turn 8"),
    "zi20_confused_negatives": ("a calm spoken question about dividing by minus three under a frown"
                                " and a voice read as anger, before the frown could be learned as "
                                "his usual look: frustrated, confused not reached by turn 6"),
    "zj13_tyler_how_many_more": ("boredom said in clock-watching, sarcasm and one-word replies "
                                 "('how long is this gonna take', 'k', 'how many more questions', "
                                 "'whatever'): bored not reached by turn 8"),
    "zj17_marcus_fried_brain": "end in one of ['engaged', 'delighted']: ended confused",
    "zj18_sienna_love_that": ("frustration hidden in sarcasm and smileys ('amazing wrong again 🙂', "
                              "'clearly a maths genius') read as confusion: frustrated not reached "
                              "by turn 7"),
    "zk01_amara": ("a keen girl after surgery asking for a harder one ('that one was easy tho', "
                   "'can i do a harder one') taken for boredom: entered bored at turn 2"),
    "zk07_priya": "never enter ['bored', 'anxious', 'frustrated']: entered ['anxious'] at turn 4",
    "zk18_zainab": ("quiet frustration in few words ('fine', 'uff', 'theres no point im just bad at"
                    " this') beside slow wrong answers, read as confusion: frustrated not reached "
                    "by turn 9"),
    "zl05_jade": ("never enter ['frustrated', 'anxious', 'bored']: entered ['bored'] at turn 8; end"
                  " in one of ['engaged', 'delighted']: ended bored"),
    "zl08_liam": ("right answers two minutes apart, 'brb' and 'how long is left', a laugh at his "
                  "phone read as joy: delighted at turn 5, bored not reached by turn 9"),
    "zm01_amira": ("tears under a face read as anger: a slow second wrong answer entered frustrated"
                   " at turn 3 (anxious reached after)"),
    "zm07_grace": ("'im just stupid at maths' said sadly but flagged frustrated (the feeling head "
                   "hears it as feeling down): frustrated at turn 2, anxious not reached by turn 6,"
                   " then 'maybe im not that bad at this one' as delight"),
    "zm12_callum": ("boredom in match talk, 'how long is this on for' and slowing right answers, "
                    "'aye whatever' flagged frustrated: bored not reached by turn 9"),
    "zm15_ruby": ("laughing at a teammate (face and voice joy 0.9), then a miss while not looking: "
                  "delighted at turn 4"),
    "zm20_kofi": "never enter ['frustrated', 'bored', 'anxious']: entered ['frustrated'] at turn 2",
    "zn04_hana_behind": ("a nervous smile read as joy over right answers she doubts ('was that "
                         "right? i wasnt sure'): entered delighted at turn 2"),
    "zn08_callum_camera_off": ("fast wrong resubmits and 'this is rigged' with the camera off: "
                               "confused, frustrated not reached by turn 9"),
    "zn11_hodan_loud": ("'sorry is loud here' heard as worry under a voice read as fear: entered "
                        "anxious at turn 5"),
    "zn19_mateo_phone": "laughing at his phone read as delight: bored not reached by turn 8",
    "zn20_mariam_translating": ("pauses while her brother translates, a close-up face read as fear:"
                                " entered confused at turn 7"),
    "zo04_kirra_kriol": ("sun glare read as disgust from her first turn, before any answer, then "
                         "one wrong answer: entered frustrated at turn 2"),
    "zp03_ruairidh_window_camera": ("his corrected answer after a slip ('o wait i forgot to divide "
                                    "by 2. its 5') checked wrong for the lesson's question, a "
                                    "window-facing camera's guesses read as fear: entered anxious "
                                    "at turn 6"),
    "zp04_siobhan_wind_mic": "reach one of ['delighted']",
    "zp05_calum_accent_voice": ("a calm island accent read as anger over his confusion, the words "
                                "unread: entered frustrated at turn 6"),
    "zp08_osian_swearing_joy": ("'adding fractions ugh ok go on then' before any answer, then one "
                                "wrong answer: entered frustrated at turn 2"),
    "zp13_chloe_drowsy_meds": ("drowsy from her medicine and lost, 'i read it like 3 times' taken "
                               "for frustration, the words unread: entered frustrated at turn 7"),
    "zq04_liam_afk_bored": ("'do i have to' heard as asking for a hint and 'can i just play now. "
                            "this is year 5 stuff' a turn too early for the switch: bored not "
                            "reached by turn 7"),
    "zq11_leo_fast_fixes": ("'oops i pressed to fast again' after an impulsive slip heard as worry:"
                            " entered anxious at turn 5 (the words unread: his slips taken for "
                            "confusion at turn 2)"),
    "zq12_sofia_wanderer": "reach one of ['bored'] by turn 8",
    "zq17_ben_restless_denominators": ("'1/4 + 2/4 is 3/8 right?' heard as the answer 3/8 to the "
                                       "lesson's question (right by chance), 'can i get up and walk"
                                       " around' as a hint: confused not reached by turn 4"),
    "zr18_minh_vi": ("a boy playing a game between answers, his camera's joy the game's, typing "
                     "Vietnamese without accents: bored not reached by turn 7"),
}
_READ_ONLY = {  # missed only when the words are read
    "b07_sarcasm_flat", "c14_taglish_sad_face_fine_words", "d17_sarcastic",
    "h03_annoyed_saturday", "i07_caps_emoji_excited", "o08_sophie_test_worry",
    "o19_chatty_bored", "r07_friend_in_frame", "v20_wide_eyed_excited", "w03_phone_under_desk",
    "x02_smiling_sorry_maya", "x13_sarcastic_priya", "za19_yusuf_proud_student",
    "zd15_harsh_old_tutor", "zf17_nervous_laugher", "zg09_call_newspaper",
    "zh18_silent_speed_guessing", "zi04_quietly_lost", "zp04_siobhan_wind_mic",
    "zq04_liam_afk_bored", "zq17_ben_restless_denominators"}
_UNREAD_ONLY = {  # --no-model: only the scripted readings, the words unread
    "zr04_tom_gaps": ("gaps in negatives after time in hospital, the words unread: ended "
                      "anxious, not confused"),
    "zr07_liam_young_carer": ("a young carer's long gaps and tired face while he works "
                              "steadily, the words unread: ended anxious"),
    "zr17_hodan_so": ("a Somali girl's accent read as anger by the voice model, translation-app "
                      "English unread: ended anxious, not confused"),
    "b04_single_frown": "change style on at most 1 turns: changed on 2",
    "d15_distracted": "distraction is not read as boredom, the words' emotion unread",
    "e12_tired_sighing": ("never enter ['delighted', 'anxious']: entered ['anxious'] at turn 12; "
                          "end in one of ['engaged', 'bored', 'frustrated']: ended anxious"),
    "f18_hints_fail_then_example": "frustration outlasts the worked example, the words unread",
    "i02_panic_first_wrong": ("panic said in words outlasts the recovery, the words unread: ended "
                              "anxious"),
    "o10_jayden_sunny_window": "glare read as fear, the words unread: entered anxious at turn 2",
    "q11_half_asleep_2130": "end in one of ['bored', 'engaged']: ended frustrated",
    "q17_phone_and_cam_off": ("on his phone, camera off, slow minimal answers, the words unread: a "
                              "slip at turn 10 read as confusion; bored not reached by turn 10"),
    "s01_flat_affect_fractions": ("a flat face read as sad or angry, formal messages: ended "
                                  "confused"),
    "v02_dim_corner_engaged": ("a dim corner's camera reading fear and sadness, the calm words "
                               "unread: entered anxious at turn 4"),
    "x05_fine_whatever_dana": "end in one of ['frustrated', 'confused']: ended anxious",
    "x17_tala_away": ("the words unread, right answers after a smile read as delight and a wrong "
                      "one after 5 minutes away as confusion: the style changed on 4 turns, at most"
                      " 2 expected"),
    "y11_island_lag": ("a wrong answer after long gaps of a slow connection read as confusion, the "
                       "words unread: ended confused"),
    "y14_shared_room_whisper": ("'these are alright actually' heard as an ack (no longer as too "
                                "easy) under a whisper read as fear, the words unread: entered "
                                "anxious at turn 9"),
    "y20_generator_flicker_fine": ("a generator's flickering light read as fear, one slip "
                                   "corrected: entered anxious at turn 7"),
    "z03_fire_drill": ("a fire drill's startle and a cold face after it read as fear, the words "
                       "unread: entered anxious at turn 5"),
    "z16_sun_glare": ("glare read as fear and sadness all morning, the words unread: entered "
                      "anxious at turn 2"),
    "za01_telly_room_year7": ("a dim lamp read as sadness and fear over a Year 7's right answers, "
                              "the words unread: entered anxious at turn 4"),
    "za07_well_easy_innit": ("never enter ['frustrated', 'anxious', 'bored']: entered ['bored'] at "
                             "turn 11; end in one of ['engaged', 'delighted']: ended bored"),
    "za13_says_it_out_loud": ("never enter ['frustrated', 'anxious', 'bored']: entered "
                              "['frustrated'] at turn 2"),
    "zc16_kenya_bored_then_challenged": ("never enter ['anxious', 'frustrated']: entered "
                                         "['anxious'] at turn 8"),
    "zd02_bouncy_cam_keeper": ("a bouncing phone camera read as anger and fear, a slip he owns, the"
                               " words unread: entered anxious at turn 5"),
    "zd03_portugues_winger": ("lost on moving terms, then a face read half angry after five wrong "
                              "answers, the words unread: ended frustrated"),
    "zd09_bus_voice_mic": ("'sorry the guys are playing music' heard as worry, the words' emotion "
                           "unread: entered anxious at turn 6"),
    "zd12_mum_booked_this": ("'my mum booked this not me' heard as feeling down, the words' emotion"
                             " unread: entered anxious at turn 2"),
    "zd17_hinglish_engaged": ("'arre, sign galat ho gaya' heard as annoyed under an accent read as "
                              "anger, the words' emotion unread: frustrated at turn 8"),
    "zd19_says_im_fine": "change style on at most 3 turns: changed on 4",
    "ze09_flip-why-then-oh": ("'why flip? not understand' under a face read as surprise, then a "
                              "frown read as anger on a wrong answer, the words unread: frustrated "
                              "at turn 5, not confused by turn 5"),
    "zg11_lagos_bulb": ("one bulb's shadows read as sadness and fear over right answers, the words "
                        "unread: entered anxious at turn 2"),
    "zh11_night_bus_voice": ("bus noise read as anger and fear in his voice, the words unread: "
                             "entered anxious at turn 2"),
    "zh12_whisper_sister_asleep": ("a whisper and a dark room read as fear over right answers, the "
                                   "words unread: entered anxious at turn 2"),
    "zj02_sofiia_where_six": "end in one of ['engaged', 'delighted']: ended confused",
    "zj08_hamza_where_five": "never enter ['bored', 'anxious']: entered ['anxious'] at turn 9",
    "zj11_jayden_ez_lost": ("a cocky start, then wrong answers and 'where did the 4 come from', the"
                            " words unread: frustrated, confused not reached by turn 6"),
    "zk10_sofia": "a tired girl on chemotherapy, slow and right, the words unread: ended delighted",
    "zm03_lily": ("a frozen girl's '.', 'idk' and 'sorry' under a face read as fear, the words "
                  "unread: between anxious and confused, the style changed on 4 turns, at most 3 "
                  "expected"),
    "zm11_tyrese": ("never enter ['bored', 'frustrated', 'anxious', 'confused']: entered ['bored'] "
                    "at turn 2"),
    "zn09_noah_needle": ("fear of a needle read as worry about the maths, then his wrong idea (1/8 "
                         "bigger than 1/4) taken for frustration, the words unread: confused not "
                         "reached by turn 9"),
    "zo01_jarrah_frozen": ("a frozen satellite frame read as sadness, and his explanation ('that "
                           "one easy. half the pizza same as two quarter ya') heard as a wrong "
                           "answer: entered anxious at turn 6, then 'give me harder one' as "
                           "boredom"),
    "zo06_shania_nervous": ("a nervous smile read as joy, her fear of mistakes unread: entered "
                            "delighted at turn 5"),
    "zo15_jayden_race": ("'2 for 2 lets goooo' heard as a wrong answer, so his one miss made a run,"
                         " the words' joy unread: entered anxious at turn 5"),
    "zo18_ana_chlorine": ("two early misses under chlorine-red eyes read as sadness, the words "
                          "unread: confused, then anxious at turn 4"),
    "zo20_lin_whisper": ("a whisper read as sadness and a dim face as fear over right answers, the "
                         "words unread: entered anxious at turn 2"),
    "zq13_omar_wiggle_camera": ("a wobble cushion's blur read as fear over right answers, the words"
                                " unread: entered anxious at turn 3"),
    "zq14_grace_slow_one": ("a careful girl's tentative 'ok. maybe im not that slow' after her "
                            "worry heard as delight: ended delighted"),
}
OTHERS_MISSED_UNREAD = {**{k: v for k, v in OTHERS_MISSED.items() if k not in _READ_ONLY},
                        **_UNREAD_ONLY}


def test_the_suite_covers_every_state_and_the_traps():
    assert len(FILES) >= 12
    expects = [load_scenario(f).expect for f in FILES]
    assert all(e is not None for e in expects)
    reached = {s for e in expects for s in e.reach + e.final}
    assert reached >= {"engaged", "delighted", "frustrated", "anxious", "confused", "bored"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_adaptive_tutor_does_what_the_scenario_expects(path):
    scenario = load_scenario(path)
    assert unmet(scenario, run_scenario(scenario).rows) == []


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.xfail(reason=OTHERS_MISSED_UNREAD[p.stem], strict=True))
    if p.stem in OTHERS_MISSED_UNREAD else p for p in OTHERS], ids=lambda p: p.stem)
def test_scripted_students_written_by_others(path):
    scenario = load_scenario(path)
    assert unmet(scenario, run_scenario(scenario).rows) == []


def test_unmet_names_what_the_tutor_did_not_do():
    scenario = load_scenario(SCENARIOS_DIR / "smiling_while_failing.yaml")
    control = run_scenario(scenario, control=True).rows
    misses = unmet(scenario, control)
    assert len(misses) == 2 and misses[0].startswith("reach one of ['frustrated', 'confused']")
    assert misses[1] == "end in one of ['frustrated', 'confused']: ended engaged"
    assert unmet(scenario, run_scenario(scenario).rows) == []


def test_check_exits_1_when_the_expectation_is_unmet(capsys):
    path = str(SCENARIOS_DIR / "smiling_while_failing.yaml")
    assert main([path, "--no-model", "--json", "--check"]) == 0
    assert capsys.readouterr().err.strip() == "expect met"
    assert main([path, "--no-model", "--json", "--check", "--control"]) == 1
    assert "expect unmet: reach one of" in capsys.readouterr().err


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_control_arm_never_adapts(path):
    rows = run_scenario(path, control=True).rows
    styles = {(r.state, r.tone, r.pacing, r.hint_level) for r in rows}
    assert styles == {("engaged", "neutral", "normal", 0)}
    assert not any(r.changed or r.offer_break for r in rows)
    assert all(r.noticed == "" for r in rows)


def test_json_prints_one_object_per_turn_with_the_documented_keys(capsys):
    path = SCENARIOS_DIR / "smiling_while_failing.yaml"
    assert main([str(path), "--json", "--no-model"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    objs = [json.loads(line) for line in lines]
    assert [o["turn"] for o in objs] == list(range(len(load_scenario(path).turns)))
    keys = {"turn", "move", "correct", "state", "tone", "pacing", "hint_level", "offer_break",
            "changed", "reason", "reply"}
    assert all(keys <= set(o) for o in objs)
    assert objs[1]["move"] == "answer" and objs[1]["correct"] is False
    assert any(o["changed"] and o["tone"] == "calm" for o in objs)


def test_the_student_sees_plain_words_that_name_the_camera_or_voice_and_never_typed_when_spoken():
    smile = run_scenario(SCENARIOS_DIR / "camera_smile_only.yaml").rows
    change = next(r for r in smile if r.changed)
    assert "face" in change.noticed and not any(c.isdigit() for c in change.noticed)
    anxious = run_scenario(SCENARIOS_DIR / "anxious_speech.yaml").rows
    change = next(r for r in anxious if r.changed)
    # "um I'm not sure, I always get these wrong", said in a fearful voice: the worry said
    # switches at once (said_at_once), and the note names what was said, never typing
    assert change.source == "spoken" and "what you said" in change.noticed
    spoken = [r for f in FILES for r in run_scenario(f).rows if r.source == "spoken"]
    assert spoken and not any("wrote" in r.noticed or "typed" in r.noticed for r in spoken)
    fast = run_scenario(SCENARIOS_DIR / "fast_turns_frustration.yaml").rows
    calm = [r for r in fast if r.changed]
    assert calm[0].tone == "calm" and "!" not in calm[0].noticed  # the words match the calm tone


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 879 scripted students, every message read by the model: minutes
def test_the_suite_holds_when_the_shipped_model_reads_the_words():
    """Turns without a scripted `text` reading are read by the shipped model, as by default."""
    from tutor.simulate import model_text_reader

    read_text = model_text_reader()
    if read_text is None:
        pytest.skip("the shipped model is not installed here")
    for path in FILES + OTHERS:
        scenario = load_scenario(path)
        misses = unmet(scenario, run_scenario(scenario, read_text=read_text).rows)
        assert (misses != []) == (path.stem in OTHERS_MISSED), (path.stem, misses)
