"""A captioning model's sentence made into a training caption: the trigger word in place of the
subject's noun ("a red car on a table" -> "a red ohwx on a table"), so the LoRA binds the word
to the subject and the rest of the caption (colour, background, pose) to what is not it.
Plain rules over the words, no model: captioners write a few well-worn sentence shapes."""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


DETERMINERS = _words("a an the one two three four some several this")
# Words that end a noun phrase: prepositions, verbs and joiners captioners put after the subject.
STOPS = _words(
    """on in at with of near under over against by from behind beside next and or but is are
    was were has have that which who while as to into onto inside outside above below between
    among along across around through for its their his her"""
)
# "-ing" words that are things, not actions ("a painting of", "a building with").
ING_NOUNS = _words("painting building ring king thing string wing ceiling")
# Participles captioners put after the subject ("a car parked on ...").
PARTICIPLES = _words(
    """parked placed seated dressed made covered filled painted surrounded shaped colored
    coloured isolated displayed perched stacked framed lit set laid mounted printed drawn shown
    pictured wrapped attached decorated"""
)
# BLIP's stray words ("arafed man in a suit").
NOISE = re.compile(r"\b(?:araf+\w*|araffe)\s+", re.IGNORECASE)
# Heads that frame the subject rather than being it: "a photo of a dog" is about the dog.
FRAMES = _words(
    """picture photo photograph image drawing illustration painting render rendering close-up
    closeup view sketch portrait shot pair set group bunch pile stack collection couple"""
)
LEAD_INS = re.compile(
    r"^(?:the|this) (?:image|picture|photo|photograph) (?:shows|is of|depicts|features|"
    r"contains|is)\s+|^in (?:this|the) (?:image|picture|photo),?\s+"
    r"(?:there is\s+|we (?:can )?see\s+)?|^there is\s+|^we (?:can )?see\s+",
    re.IGNORECASE,
)


def _subject(words: list[str], start: int = 0) -> int | None:
    """The index of the subject's noun: the last word of the noun phrase at `start` (after its
    determiner, if any), skipping frames ("a photo of ...")."""
    first = start + 1 if _bare(words[start]) in DETERMINERS else start
    j = first
    while j < len(words) and not _ends_phrase(words, first, j):
        if words[j].endswith((",", ".", ";", ":")):
            j += 1
            break
        j += 1
    if j == first:
        return None
    head = j - 1
    if _bare(words[head]) in FRAMES and head + 1 < len(words) and _bare(words[head + 1]) == "of":
        return _subject(words, head + 2) if head + 2 < len(words) else head
    return head


def _ends_phrase(words: list[str], first: int, j: int) -> bool:
    word = _bare(words[j])
    if word in STOPS or (j > first and word in PARTICIPLES):
        return True
    # An "-ing" word followed by "of" is a thing too ("a cartoon drawing of a dragon").
    of_next = j + 1 < len(words) and _bare(words[j + 1]) == "of"
    return j > first and word.endswith("ing") and word not in ING_NOUNS and not of_next


def _bare(word: str) -> str:
    return word.lower().strip(".,;:!?\"'()")


def trigger_in_place(text: str, trigger: str) -> str:
    """`text` with `trigger` in place of its subject's noun, there and wherever the noun comes
    again; the trigger first when no subject is found."""
    text = NOISE.sub("", LEAD_INS.sub("", " ".join(text.split()))).strip()
    for words, joined in (("close up", "close-up"), ("black and white", "black-and-white")):
        text = re.sub(rf"\b{words}\b", joined, text, flags=re.IGNORECASE)
    if not text:
        return trigger
    words = text.split(" ")
    head = _subject(words)
    if head is None:
        return f"{trigger}, {text}"
    noun = _bare(words[head])
    pattern = re.compile(rf"\b{re.escape(noun)}\b", re.IGNORECASE)
    out = [pattern.sub(trigger, w) if i >= head else w for i, w in enumerate(words)]
    if head > 0 and _bare(out[head - 1]) in ("a", "an"):
        article = "an" if trigger[:1].lower() in "aeiou" else "a"
        out[head - 1] = _same_case(out[head - 1], article)
    caption = " ".join(out)
    return caption[0].lower() + caption[1:] if caption[:1].isupper() else caption


def _same_case(old: str, new: str) -> str:
    return new.capitalize() if old[:1].isupper() else new
