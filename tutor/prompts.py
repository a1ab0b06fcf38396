"""Every word the tutor says of its own: the template phrasebook and the LLM prompts.

The lesson content (explanations, examples, questions, hints, feedback) comes from the
lesson pack; this module holds only the connecting lines, one bank per situation and
tone, so a teacher can change how the tutor sounds in one place. Each bank has several
lines; the tutor never picks the same line of a bank twice in a row.

Tones are the policy's: neutral, upbeat, encouraging, calm. A bank without a line for a
tone falls back to its neutral lines.
"""

from __future__ import annotations

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "greet": {
        "neutral": ("Hello! Let's get started.", "Hi there. Ready when you are.",
                    "Hello, good to see you."),
        "upbeat": ("Hey! Great to see you. Let's dive in!", "Hi! This is going to be fun.",
                   "Hello! Let's do some maths!"),
        "encouraging": ("Hi! We'll go at your pace.", "Hello! No rush at all today.",
                        "Hi, glad you're here. We'll take it step by step."),
        "calm": ("Hello. Let's begin gently.", "Hi. We'll take this one step at a time.",
                 "Hello. Let's settle in."),
    },
    "open": {  # the lesson's first step, in the tutor's first message
        "neutral": ("We'll start with this step: {title}.", "First, one idea: {title}.",
                    "To begin: {title}."),
    },
    "step": {
        "neutral": ("Today's step: {title}.", "Next up: {title}.", "This step: {title}."),
        "upbeat": ("New step: {title}!", "Next up: {title}!", "Here comes a new step: {title}!"),
        "encouraging": ("Our next step: {title}. You're ready for it.",
                        "Together, the next step: {title}.", "Next we'll look at this: {title}."),
        "calm": ("The next step: {title}.", "Now, quietly, a new step: {title}.",
                 "Next, one idea: {title}."),
    },
    "ask": {
        "neutral": ("Here's a question:", "Try this one:", "Your turn:", "Next question:"),
        "upbeat": ("Here's one for you:", "Try this:", "Ready? Here we go:", "Next one:"),
        "encouraging": ("Have a go at this one:", "Give this a try, in your own time:",
                        "Here's one you can do:", "Try this, no rush:"),
        "calm": ("Here is the question:", "Try this one, slowly:", "Take a look at this:",
                 "When you're ready:"),
    },
    "reask": {
        "neutral": ("The question again:", "Back to the question:", "Try the question again:"),
        "upbeat": ("Back to it:", "Let's crack it:", "Give it another go:"),
        "encouraging": ("Have another go, you're getting closer:", "Try once more:",
                        "Here's the question again, take your time:"),
        "calm": ("Let's come back to the question:", "Here it is again:",
                 "When you're ready, try again:"),
    },
    "again": {
        "neutral": ("Have another go.", "Try again.", "What do you get now?"),
        "upbeat": ("Go for it!", "You've got this!", "Give it a shot!"),
        "encouraging": ("Have another try; you can do this.", "Try again, no rush.",
                        "See where that takes you."),
        "calm": ("Try again when you're ready.", "Take your time with it.",
                 "One step at a time."),
    },
    "right": {
        "neutral": ("That's right.", "Correct.", "Yes, that's it.", "Right answer."),
        "upbeat": ("Yes! Spot on!", "Brilliant, that's right!", "Nailed it!",
                   "Exactly right, great work!"),
        "encouraging": ("That's right, well done!", "Yes! You worked that out.",
                        "Correct. See, you can do this.", "That's it, nice work."),
        "calm": ("That's right.", "Yes, that's correct.", "Good, that's it.",
                 "Correct, well reasoned."),
    },
    "wrong": {
        "neutral": ("Not quite.", "That's not it yet.", "Not this time."),
        "upbeat": ("Close, but not quite!", "Not yet, but let's get it!",
                   "Almost, let's fix it!"),
        "encouraging": ("Not quite, and that's okay; mistakes are how we learn.",
                        "Not yet, but you're thinking about it the right way.",
                        "That one's not right, but we'll get there."),
        "calm": ("Not quite. That's fine.", "Not yet. Let's look at it together.",
                 "That isn't it, and that's okay."),
    },
    "not_yet": {
        "neutral": ("Nearly there.", "Almost.", "One more thing."),
        "upbeat": ("So close!", "Almost there!", "Nearly!"),
        "encouraging": ("You're nearly there.", "Good start.", "Almost; one small thing."),
        "calm": ("Nearly.", "Almost there.", "One small thing."),
    },
    "unclear": {
        "neutral": ("I can't use that as an answer yet.", "I couldn't read that as an answer.",
                    "Hmm, I can't check that one."),
        "upbeat": ("Oops, I couldn't read that one!", "Hmm, try typing that another way!"),
        "encouraging": ("I couldn't quite read that, no problem.",
                        "Let's try writing that another way."),
        "calm": ("I couldn't read that as an answer. That's fine.",
                 "Let's write that another way."),
    },
    "hint": {
        "neutral": ("Hint:", "Here's a hint:", "A clue:"),
        "upbeat": ("Here's a clue!", "Hint time:", "A little help:"),
        "encouraging": ("Here's a hint to help:", "This might help:", "A small clue:"),
        "calm": ("Here's a hint:", "Something that may help:", "A gentle hint:"),
    },
    "no_more_hints": {
        "neutral": ("That's every hint I have for this one.",
                    "There are no more hints for this question."),
        "encouraging": ("That's all my hints, but you've got everything you need.",
                        "No more hints left, and you're closer than you think."),
        "calm": ("That was the last hint. Let's reread it slowly.",
                 "No more hints; the last one says almost everything."),
    },
    "explain": {
        "neutral": ("Let me explain it another way.", "Here's the idea again.",
                    "Let's go over it."),
        "upbeat": ("Let's look at it from another angle!", "Here's another way to see it!",
                   "Quick recap!"),
        "encouraging": ("No problem. Let's go through it together.",
                        "Lots of people find this tricky at first. Here's the idea.",
                        "Let's unpack it together."),
        "calm": ("Let's slow down and go through it.", "Let's take it step by step.",
                 "Here's the idea, slowly."),
    },
    "worked": {
        "neutral": ("Here's a worked example first.", "Let's see a worked example.",
                    "First, an example done for you."),
        "upbeat": ("Check out this example first!", "Here's an example to warm up!",
                   "Watch how this one works!"),
        "encouraging": ("Let's look at a worked example together first.",
                        "Here's one worked through, so you can see the steps.",
                        "An example first; then you'll try one."),
        "calm": ("Let's look at a worked example first.", "First, a worked example, step by step.",
                 "Let's watch one being solved first."),
    },
    "yours": {
        "neutral": ("Now yours:", "Now try yours:", "Your question:"),
        "upbeat": ("Now you!", "Your turn!", "Now show me!"),
        "encouraging": ("Now try yours the same way:", "Your turn; follow the same steps:",
                        "Now you have a go:"),
        "calm": ("Now, the same steps for yours:", "Now yours, slowly:", "Your turn, same way:"),
    },
    "why": {
        "neutral": ("Here's why:", "The reason:", "Why it works:"),
        "upbeat": ("Great question! Here's why:", "Love that you asked! Here's why:",
                   "Good one! The reason is:"),
        "encouraging": ("Good question to ask. Here's why:", "Asking why is smart. Here's the reason:",
                        "Here's why it works:"),
        "calm": ("Here's why:", "Let's see why:", "The reason is this:"),
    },
    "skip": {
        "neutral": ("Okay, let's try a different one.", "Sure, moving on.", "Fine, another one."),
        "upbeat": ("Sure thing, next!", "Okay, let's switch it up!", "Onwards!"),
        "encouraging": ("That's okay, let's try a different one.",
                        "No problem, we can come back to it later.", "Sure, here's another."),
        "calm": ("That's fine. Let's try another.", "Okay, we'll leave that one for now.",
                 "Sure. A different one."),
    },
    "harder": {
        "neutral": ("Let's try something harder.", "Here's a harder one.",
                    "Let's move ahead."),
        "upbeat": ("You're flying! Here's a harder one.", "Let's level up!",
                   "Ready for a challenge? Here it comes!"),
        "encouraging": ("You're ready for something harder.", "Let's stretch a bit further.",
                        "Here's a bigger challenge."),
        "calm": ("Let's try a harder one.", "Let's move ahead a little.",
                 "Something a bit harder."),
    },
    "this_one_first": {  # "too easy" (or "getting hard", heard so) just after a miss
        "neutral": ("Let's get this one first.", "First, this one.",
                    "Let's finish this one, then we'll see."),
        "upbeat": ("Let's nail this one first!", "This one first, you can do it!",
                   "Let's crack this one first!"),
        "encouraging": ("Let's get this one first, step by step.",
                        "This one first. Take your time.", "Let's work this one out first."),
        "calm": ("Let's get this one first.", "This one first, no rush.",
                 "Let's take this one slowly first."),
    },
    "prove_it": {
        "neutral": ("Then this one should be quick.", "Let's check with the hardest one here.",
                    "Show me with this one."),
        "upbeat": ("Prove it! Try this one.", "Then this one's for you!",
                   "Let's see, try the toughest one here!"),
    },
    "off_topic": {  # about anything (a pet, a worry, pride told to a parent, the football):
        # heard, with no judgement of what was said, then back to the lesson
        "neutral": ("Thanks for telling me. Let's get back to the question.",
                    "Thanks for sharing that. Now, back to the maths.",
                    "I hear you. Let's carry on with the question."),
        "upbeat": ("Thanks for sharing! Let's get back to it.",
                   "Thanks for telling me! Back to the maths now.",
                   "Thanks! Back to the maths, you've got this!"),
        "encouraging": ("Thanks for telling me. Let's finish this one first.",
                        "We can chat after; let's keep going for now.",
                        "I hear you. Let's get back to it together."),
        "calm": ("Thanks for telling me. Let's come back to the maths.",
                 "I hear you. Let's set that aside for now.",
                 "Thanks. Back to the question, gently."),
    },
    "worried_question": {  # chat heard as worry: "will my teacher see this"
        "neutral": ("No need to worry: this is practice, and mistakes here are how you learn.",
                    "It's okay to ask. This is practice, so a wrong answer is just a step."),
        "upbeat": ("No worries! This is practice: mistakes are how we learn.",),
        "encouraging": (("That's a fair thing to wonder. This is practice, and mistakes here "
                         "are how you learn."), "No need to worry; we'll go at your pace."),
        "calm": ("That's okay to wonder. This is practice; mistakes are part of it.",
                 "No need to worry. We'll take it one step at a time."),
    },
    "early": {  # an answer typed before any question was asked
        "neutral": ("Hold that thought: let's start with the first question.",
                    "Keen! Here's where we start."),
        "upbeat": ("Keen, I like it! Here's the first one.",),
        "calm": ("Let's start at the beginning.",),
    },
    "acknowledge": {  # typed frustration that is not an answer: heard, not steered away from
        "neutral": ("That sounds frustrating. Let's take it one step at a time.",
                    "I hear you; this part can be annoying. Let's work through it."),
        "upbeat": ("I get it, that's annoying! Let's crack it together.",),
        "encouraging": ("That's a normal feeling; it means you're working at it. We'll go step by step.",
                        "It's okay to find this hard. Let's work through it together."),
        "calm": ("That sounds frustrating. Let's slow down and take it one step at a time.",
                 "It's fine to feel stuck. One small step at a time."),
    },
    # a feeling put into words (a `vent` the flag does not call frustration), by the feeling
    # the move classifier hears in it; anger, or any vent flagged frustrated, is `acknowledge`
    "share_joy": {  # gladness: "I DID IT!!", "this is easy now 😊", "oops upside down haha"
        "neutral": ("Love the attitude. Let's keep going.", "Glad to hear it. On we go.",
                    "Good spirit. Let's keep going."),
        "upbeat": ("Love that energy!", "That's the spirit!", "Woohoo, keep it coming!"),
        "encouraging": ("Love that attitude. Keep it up.",
                        "I'm so glad you're enjoying it."),
        "calm": ("That's good to hear.", "Glad to hear it. Let's keep going."),
    },
    "heard_feeling": {  # a feeling put into words that the classifier does not hear surely
        # ("its not the maths. mums had a bad night"): heard, neither cheered nor consoled
        "neutral": ("Thanks for telling me. We'll go at your pace.",
                    "I hear you. Let's keep going, one step at a time."),
        "upbeat": ("Thanks for telling me! Let's keep going together.",),
        "encouraging": ("Thanks for telling me. We'll take it at your pace, together.",
                        "I hear you. There's no rush; we'll go step by step."),
        "calm": ("Thanks for telling me. There's no rush.",
                 "I hear you. We'll take it gently."),
    },
    "reassure": {  # worry: "im scared ill get it wrong"
        "neutral": ("That's okay. Mistakes here are just practice.",
                    "It's fine to feel unsure. We'll take it one step at a time."),
        "upbeat": ("No worries! We'll take it one step at a time.",),
        "encouraging": ("It's okay to feel nervous. Mistakes here are just practice.",
                        "No need to worry; we'll go at your pace, one step at a time."),
        "calm": ("That's okay. There's no rush.", "It's fine to feel nervous. We'll go slowly."),
    },
    "cheer_up": {  # feeling down: "im so bad at this"
        "neutral": ("Everyone finds this hard at first. You're learning it now.",
                    "You're not bad at this; it's new, and new things take practice."),
        "upbeat": ("Chin up! You're getting there!",),
        "encouraging": ("You're doing better than you think. Every try teaches you something.",
                        "Be kind to yourself: this is hard, and you're working at it."),
        "calm": ("It's okay to feel that way. Let's take it slowly together.",
                 "That's alright. One small step at a time."),
    },
    "hear_bored": {  # boredom or tiredness: "meh", "im so tired" (the pacing is the policy's)
        "neutral": ("Fair enough. Let's keep it moving.", "Okay, I hear you. Let's keep going."),
        "upbeat": ("Fair enough! Let's keep it moving.", "I hear you! Let's keep going."),
        "calm": ("Okay. Let's keep going at a steady pace.",),
    },
    "reveal": {
        "neutral": ("Let's look at the answer: {answer}.", "The answer is {answer}.",
                    "Here's the answer: {answer}."),
        "encouraging": ("This one was tough. The answer is {answer}.",
                        "Let's see it together: the answer is {answer}.",
                        "That was a hard one. It's {answer}."),
        "calm": ("Let's look at the answer together: {answer}.", "The answer is {answer}.",
                 "Here is the answer, {answer}, and why."),
    },
    "break": {
        "neutral": ("Would you like a short break? Come back whenever you're ready.",
                    "This might be a good moment for a short break."),
        "encouraging": ("You've worked hard. How about a two-minute break? I'll be here.",
                        "It's okay to take a short break; your progress is saved."),
        "calm": ("Let's pause if you like: a short break, then we carry on.",
                 "How about a short break? Stretch, breathe, and come back when ready."),
    },
    # ---- student moves beyond answers and hints (tutor.intents)
    "take_break": {  # the student asked for a break: take it, come back to the same place
        "neutral": ("Sure, take a break. When you're back, send me anything and we'll pick up "
                    "right here.", "Good idea. Take a few minutes; your place is saved."),
        "encouraging": ("Of course. You've been working hard. Take a break and come back when "
                        "you're ready; we'll carry on from here.",
                        "Take a break, you've earned it. I'll keep your place."),
        "calm": ("That's fine. Take a break; we'll start again right where we stopped.",
                 "Let's pause here. Rest a little, then send me a message to carry on."),
        "upbeat": ("Break time! See you in a bit; we'll pick up right here.",),
    },
    "still_away": {  # another break message while on the break
        "neutral": ("No rush. I'll be here when you're back.",),
        "calm": ("Take all the time you need.",),
    },
    "welcome_back": {
        "neutral": ("Welcome back! Here's where we were.", "Good to have you back."),
        "encouraging": ("Welcome back! Let's pick up where you left off.",
                        "Hi again! Ready when you are."),
        "calm": ("Welcome back. Let's carry on gently from where we were.",),
        "upbeat": ("You're back! Let's keep going.",),
    },
    "reveal_not_yet": {  # "just tell me the answer" before any attempt: a hint first
        "neutral": ("Have a go first; here's a hint to get you started.",
                    "Let's try it together first. Here's a hint."),
        "encouraging": ("I think you can get this one. Here's a hint to help.",
                        "Give it a try first, even a guess. Here's a hint."),
        "calm": ("Let's try it first, one small step at a time. Here's a hint.",),
    },
    "repeat": {
        "neutral": ("Here's the question again:", "Sure. The question is:"),
        "calm": ("Of course. Here it is again:",),
        "upbeat": ("Sure thing! Here it is:",),
    },
    "confirm_right": {  # "is that right?" just after a right answer
        "neutral": ("Yes, that one was right.", "Yes, your last answer was right."),
        "upbeat": ("Yes, that one was right!", "Yes! Your last answer was spot on."),
        "encouraging": ("Yes, that one was right. You can trust your working.",
                        "Yes, your last answer was right."),
        "calm": ("Yes, that one was right.", "Yes, your last answer was correct."),
    },
    "confirm_wrong": {  # "was that right?" just after a wrong answer
        "neutral": ("No, that one wasn't right.", "No, your last answer wasn't right yet."),
        "upbeat": ("Not that one, but you're getting there!",
                   "Not quite that one. Keep going!"),
        "encouraging": ("Not that one yet, and that's fine: a wrong answer shows what to "
                        "look at.", "Not quite yet. You're learning it."),
        "calm": ("No, that one wasn't right. Let's look again.",
                 "Not that one. We'll take it slowly."),
    },
    "carry_on": {  # "ok", "thanks": carry on with the question
        "neutral": ("Great. Over to you:", "Okay! Go ahead:", "Good. When you're ready:"),
        "upbeat": ("Awesome! Your go:", "Great, let's go:"),
        "encouraging": ("Good. Have a go when you're ready:", "Great, give it a try:"),
        "calm": ("Okay. Take your time:", "Good. When you're ready:"),
    },
    "no_example": {  # asked for an example when every worked example was shown
        "neutral": ("That's all my worked examples for this step. Here's the idea again:",),
        "calm": ("I've shown the examples I have. Let's look at the idea once more:",),
    },
    "more_help": {  # after venting: what the tutor does to help
        "neutral": ("Here's something to help.", "Let's make it easier."),
        "encouraging": ("Here's a little help to get you going.",),
        "calm": ("Here's a small step to start with.",),
    },
    "done": {
        "neutral": ("That's the whole lesson mastered. Well done.",),
        "upbeat": ("You've mastered the whole lesson! Amazing!",),
        "encouraging": ("You've mastered the whole lesson. Be proud of that!",),
        "calm": ("You've mastered the whole lesson. Nicely done.",),
    },
}

# ---------------------------------------------------------------- the LLM phraser

TONE_GUIDE = {
    "neutral": "plain and friendly, no fuss",
    "upbeat": "energetic and warm, with a little excitement",
    "encouraging": "reassuring and warm; normalise mistakes; praise effort",
    "calm": "slow, steady and gentle; short sentences; no exclamation marks",
}
PACING_GUIDE = {
    "normal": "the usual pace",
    "slower": "slower: one idea per sentence, the detailed explanation, nothing skipped",
    "worked_example": "show the worked example first, every step of it, then the question",
    "harder": "brisk: the student finds this easy; keep it short and move on",
    "skip": "brisk: move straight on",
}

SYSTEM_PROMPT = """\
You are Attune, a patient maths tutor chatting with a student aged 10 to 14.
You do not decide anything: the tutor's code has already checked the answer and planned the \
reply. Your only job is to say the planned reply in your own words.

Rules:
- Correctness was decided by code: {verdict}. Never say or suggest anything else about it. \
Do not call a wrong answer right or a right answer wrong.
- Keep every fact, number, hint, example step and question of the planned reply. Do not add \
new maths, and do not give away an answer the planned reply does not give.
- Tone: {tone} ({tone_guide}).
- Pacing: {pacing} ({pacing_guide}).
- Reply with the message only, in at most {max_sentences} sentences plus any example steps \
and the question. No preamble, no quotes around it.
- You may call the check_answer tool to check a value the student might have meant; its \
result is final, and it does not change the verdict above."""

USER_PROMPT = """\
Lesson step: {step_title}
What the step teaches: {step_explanation}
Current question: {question}
The student wrote: {student_message}
What the student is doing: {move}
Checked result: {verdict}

Planned reply (say this, in the tone and pacing above):
{plan}"""

VERDICTS = {
    True: "the student's answer is CORRECT",
    False: "the student's answer is NOT correct",
    None: "no answer was checked this turn",
}
