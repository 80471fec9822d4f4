#!/usr/bin/env python3
"""Writes paramscope's bundled training corpus, models/corpus.txt, and the
list of facts a model trained on it is tested on, tools/facts.txt.

The corpus is plain English written for paramscope: short sentences about
what a class knows (colours of things, animals and their sounds, weather and
seasons, food, the body, jobs, places, opposites, numbers, time of day).

Each fact is written many times with its prompt words exactly adjacent
("the sky is blue"), with the context *before* the prompt varied ("look ,",
"tom said that", "on a sunny day"), because the model predicts the word that
follows the prompt.  Some prompts have honest competing continuations ("the
sky is" is usually blue, but grey on a rainy day and dark at night); the
script counts what follows every tested prompt and refuses to write files in
which the expected word is not clearly the most frequent one.

Python 3 standard library only; the output depends only on SEED.

    python3 tools/make_corpus.py            # writes both files
    python3 tools/make_corpus.py --check    # only prints the statistics
"""

import argparse
import collections
import os
import random
import re
import sys

SEED = 20240917
TARGET_WORDS = 60000          # words, not counting punctuation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------- people

GIRLS = ["anna", "lily", "mia", "emma", "zoe", "ruby", "ella", "sara", "nina",
         "kim"]
BOYS = ["tom", "sam", "ben", "max", "leo", "jack", "noah", "omar", "li",
        "paul"]
NAMES = GIRLS + BOYS


def his(name):
    return "her" if name in GIRLS else "his"


def article(word):
    return ("an " if word[0] in "aeiou" else "a ") + word
WHO = ["my mother", "my father", "my sister", "my brother", "my friend",
       "our teacher", "the teacher", "grandma", "grandpa", "my aunt",
       "my uncle", "the old man", "the girl next door", "the boy next door"]

# ------------------------------------------------- how a fact is framed

# Context placed before a fact.  "{n}", "{n2}" are names, "{w}" a person.
# None of them ends in words that could bias what follows the prompt.
PREFIXES = [
    "", "", "", "", "", "", "", "",
    "look , ", "yes , ", "oh , ", "well , ", "see , ", "so , ", "and ",
    "we know that ", "we all know that ", "everyone knows that ",
    "i know that ", "i think ", "i am sure that ", "we learned that ",
    "{n} knows that ", "{n} says that ", "{n} said that ",
    "{n} told me that ", "{w} says that ", "{w} told us that ",
    "in class we learned that ", "at school we learned that ",
    "the book says that ", "the teacher said that ", "today we read that ",
    "remember that ", "here is a fact : ", "as you can see , ",
    "of course ", "this is easy : ", "we learned in school that ",
    "even a child knows that ", "{n} asked {n2} , and {n2} said that ",
    "{n} and {n2} know that ", "listen , ", "now we know that ",
    "the children say that ", "my little brother knows that ",
    "{n} wrote that ", "in the story , ",
]
QUESTION_PREFIXES = ["do you know that ", "did you know that ",
                     "is it true that ", "{n} asked if "]
SUFFIXES = [" .", " .", " .", " .", " .", " .", " !", " , of course .",
            " , as we all know .", " , and that is true .", " , you see ."]


def fill(rng, template):
    n, n2 = rng.sample(NAMES, 2)
    return template.format(n=n, n2=n2, w=rng.choice(WHO))


def frame(rng, body, prefixes=None):
    """One sentence carrying body, with varied words before and after."""
    r = rng.random()
    if r < 0.08:
        return fill(rng, rng.choice(QUESTION_PREFIXES)) + body + " ?"
    pre = fill(rng, rng.choice(prefixes or PREFIXES))
    return pre + body + rng.choice(SUFFIXES)


# ------------------------------------------------------------ the facts
#
# A fact: (prompt, answer, count, contexts, question, tested).
#   contexts  words that may stand right before the prompt ("" = none); they
#             must agree with the answer ("at night" before "the sky is dark")
#   question  an optional question that may come before the fact
#   tested    written to facts.txt as PROMPT<TAB>ANSWER, where PROMPT is
#             test_prompt if given (the context is part of what is tested)

def F(prompt, answer, count, contexts=("",), question=None, tested=False,
      test_prompt=None):
    return dict(prompt=prompt, answer=answer, count=count,
                contexts=list(contexts), question=question, tested=tested,
                test_prompt=test_prompt or prompt)


SKY_BLUE = ["", "", "", "", "on a sunny day ", "today ", "in summer ",
            "when the sun shines ", "on a nice day ", "in the day ",
            "on most days "]

FACTS = [
    # -- colours of things, with honest uncertainty for the sky
    F("the sky is", "blue", 135, SKY_BLUE, "what colour is the sky ?", True),
    F("the sky is", "dark", 35, ["at night "], "what colour is the sky at night ?",
      True, "at night the sky is"),
    F("the sky is", "grey", 15, ["on a rainy day ", "when it rains "]),
    F("the sky is", "cloudy", 12, ["before a storm ", "on a wet day "]),
    F("the sky is", "clear", 10, ["on a cold morning ", "after the storm "]),
    F("grass is", "green", 60, ["", "", "the ", "the ", "in spring the "],
      "what colour is grass ?", True),
    F("grass is", "wet", 8, ["after the rain the ", "in the morning the "]),
    F("snow is", "white", 55, ["", "", "", "fresh ", "in winter "],
      "what colour is snow ?", True),
    F("snow is", "cold", 8, ["", "fresh "]),
    F("milk is", "white", 50, ["", "", "cold ", "fresh "],
      "what colour is milk ?", True),
    F("coal is", "black", 45, [""], "what colour is coal ?", True),
    F("the sea is", "blue", 45, ["", "", "on a sunny day ", "in summer "],
      "what colour is the sea ?", True),
    F("the sea is", "deep", 7, [""]),
    F("the sea is", "salty", 6, [""]),
    F("a banana is", "yellow", 50, [""], "what colour is a banana ?", True),
    F("an apple is", "red", 45, [""], "what colour is an apple ?", True),
    F("an apple is", "green", 9, ["sometimes "]),
    F("a carrot is", "orange", 25, [""], "what colour is a carrot ?", True),
    F("a tomato is", "red", 20, [""], "what colour is a tomato ?"),
    F("a frog is", "green", 18, [""], "what colour is a frog ?"),
    F("a crow is", "black", 15, [""], "what colour is a crow ?"),
    F("blood is", "red", 15, [""], "what colour is blood ?"),
    F("a leaf is", "green", 15, ["in summer "], "what colour is a leaf ?"),
    F("a cloud is", "white", 14, ["", "on a sunny day "]),
    F("chocolate is", "brown", 15, [""], "what colour is chocolate ?"),
    F("a mouse is", "grey", 12, [""]),
    F("a strawberry is", "red", 12, [""]),
    F("an orange is", "orange", 12, [""]),
    # -- hot, cold and taste
    F("the sun is", "hot", 55, ["", "", "in summer "], None, True),
    F("the sun is", "bright", 10, ["", "at noon "]),
    F("the sun is", "yellow", 6, [""]),
    F("ice is", "cold", 55, ["", "", "", "hard "], None, True),
    F("ice is", "hard", 6, [""]),
    F("fire is", "hot", 20, [""]),
    F("a lemon is", "sour", 45, [""], "how does a lemon taste ?", True),
    F("a lemon is", "yellow", 14, [""]),
    F("sugar is", "sweet", 50, [""], "how does sugar taste ?", True),
    F("honey is", "sweet", 15, [""], "how does honey taste ?"),
    F("salt is", "salty", 12, [""]),
    F("soup is", "hot", 10, [""]),
    # -- animals and their sounds
    F("a cat says", "meow", 50, ["", "", "the little "], "what does a cat say ?", True),
    F("a dog says", "woof", 50, ["", "", "the big "], "what does a dog say ?", True),
    F("a cow says", "moo", 50, ["", "", "on the farm "], "what does a cow say ?", True),
    F("a duck says", "quack", 45, ["", "", "at the pond "], "what does a duck say ?", True),
    F("a sheep says", "baa", 45, ["", "", "on the farm "], "what does a sheep say ?", True),
    F("a pig says", "oink", 45, ["", "", "on the farm "], "what does a pig say ?", True),
    F("a lion says", "roar", 45, ["", "", "at the zoo "], "what does a lion say ?", True),
    F("a horse says", "neigh", 30, ["", "on the farm "], "what does a horse say ?", True),
    F("an owl says", "hoot", 30, ["", "at night "], "what does an owl say ?", True),
    F("a hen says", "cluck", 20, ["", "on the farm "], "what does a hen say ?"),
    F("a bee says", "buzz", 20, ["", "in the garden "], "what does a bee say ?"),
    F("a frog says", "ribbit", 20, ["", "at the pond "], "what does a frog say ?"),
    F("a snake says", "hiss", 15, [""], "what does a snake say ?"),
    F("a mouse says", "squeak", 15, [""], "what does a mouse say ?"),
    F("a bird can", "fly", 50, [""], "what can a bird do ?", True),
    F("a bird can", "sing", 8, [""]),
    F("a fish can", "swim", 50, ["", "in the sea "], "what can a fish do ?", True),
    F("a frog can", "jump", 25, ["", "at the pond "], "what can a frog do ?", True),
    F("a horse can", "run", 18, [""], "what can a horse do ?"),
    F("a monkey can", "climb", 18, ["", "at the zoo "], "what can a monkey do ?"),
    # -- opposites
    F("the opposite of hot is", "cold", 50, [""], "what is the opposite of hot ?", True),
    F("the opposite of big is", "small", 50, [""], "what is the opposite of big ?", True),
    F("the opposite of up is", "down", 50, [""], "what is the opposite of up ?", True),
    F("the opposite of day is", "night", 25, [""], "what is the opposite of day ?", True),
    F("the opposite of fast is", "slow", 25, [""], "what is the opposite of fast ?", True),
    F("the opposite of cold is", "hot", 14, [""]),
    F("the opposite of small is", "big", 14, [""]),
    F("the opposite of down is", "up", 14, [""]),
    F("the opposite of night is", "day", 12, [""]),
    F("the opposite of slow is", "fast", 12, [""]),
    F("the opposite of wet is", "dry", 12, [""]),
    F("the opposite of dry is", "wet", 10, [""]),
    F("the opposite of happy is", "sad", 14, [""]),
    F("the opposite of sad is", "happy", 10, [""]),
    F("the opposite of full is", "empty", 12, [""]),
    F("the opposite of empty is", "full", 10, [""]),
    F("the opposite of old is", "new", 12, [""]),
    F("the opposite of new is", "old", 10, [""]),
    F("the opposite of open is", "closed", 12, [""]),
    F("the opposite of tall is", "short", 12, [""]),
    F("the opposite of loud is", "quiet", 12, [""]),
    F("the opposite of hard is", "soft", 12, [""]),
    F("the opposite of light is", "dark", 12, [""]),
    F("the opposite of black is", "white", 12, [""]),
    F("the opposite of left is", "right", 12, [""]),
    F("the opposite of yes is", "no", 12, [""]),
    F("the opposite of in is", "out", 10, [""]),
    F("the opposite of early is", "late", 10, [""]),
    # -- the body
    F("we see with our", "eyes", 50, ["", "", "every day "], "what do we see with ?", True),
    F("we hear with our", "ears", 50, ["", "", "every day "], "what do we hear with ?", True),
    F("we smell with our", "nose", 30, [""], "what do we smell with ?", True),
    F("we taste with our", "tongue", 20, [""], "what do we taste with ?"),
    F("we walk with our", "feet", 20, [""], "what do we walk with ?"),
    F("we think with our", "brain", 15, [""], "what do we think with ?"),
    F("we clap with our", "hands", 15, [""], "what do we clap with ?"),
    # -- jobs and places
    F("a doctor works in a", "hospital", 50, [""], "where does a doctor work ?", True),
    F("a teacher works in a", "school", 50, [""], "where does a teacher work ?", True),
    F("a nurse works in a", "hospital", 14, [""], "where does a nurse work ?"),
    F("a cook works in a", "kitchen", 25, [""], "where does a cook work ?", True),
    F("a farmer works on a", "farm", 25, [""], "where does a farmer work ?", True),
    F("a baker works in a", "bakery", 14, [""], "where does a baker work ?"),
    F("a shopkeeper works in a", "shop", 12, [""], "where does a shopkeeper work ?"),
    F("a pilot flies a", "plane", 15, [""], "what does a pilot fly ?"),
    F("a driver drives a", "bus", 12, [""]),
    F("a baker makes", "bread", 12, [""]),
    F("a vet helps sick", "animals", 10, [""]),
    # -- places, homes and things we use
    F("we buy food at the", "market", 12, ["", "on saturday "]),
    F("we read books in the", "library", 12, [""]),
    F("we see animals at the", "zoo", 12, [""]),
    F("we play in the", "park", 12, ["", "after school "]),
    F("we sleep in a", "bed", 10, [""]),
    F("a bird lives in a", "nest", 12, [""], "where does a bird live ?"),
    F("a bee lives in a", "hive", 10, [""], "where does a bee live ?"),
    F("a fish lives in the", "water", 12, [""], "where does a fish live ?"),
    F("a cow lives on a", "farm", 10, [""], "where does a cow live ?"),
    F("an egg comes from a", "hen", 10, [""]),
    F("honey comes from", "bees", 8, [""]),
    F("cheese is made from", "milk", 8, [""]),
    F("bread is made from", "wheat", 8, [""]),
    F("we eat soup with a", "spoon", 10, [""]),
    F("we cut bread with a", "knife", 8, [""]),
    F("we drink", "water", 10, ["every day "]),
    F("in winter we wear a", "coat", 10, [""]),
    F("in summer we wear a", "hat", 8, [""]),
    F("when it rains we take an", "umbrella", 10, [""]),
    F("after the rain we see a", "rainbow", 10, ["", "sometimes "]),
    F("a rainbow has seven", "colours", 8, [""]),
    F("in a storm we hear", "thunder", 8, [""]),
    F("rain is", "wet", 12, [""]),
    # -- numbers
    F("one plus one is", "two", 55, [""], "what is one plus one ?", True),
    F("two plus two is", "four", 30, [""], "what is two plus two ?", True),
    F("a dog has four", "legs", 12, [""]),
    F("a bird has two", "legs", 10, [""]),
    F("a spider has eight", "legs", 10, [""]),
    F("a hand has five", "fingers", 12, [""]),
    F("a week has seven", "days", 12, [""]),
    # -- weather and seasons
    F("in winter it is", "cold", 50, [""], "what is winter like ?", True),
    F("in summer it is", "hot", 50, [""], "what is summer like ?", True),
    F("in spring it is", "warm", 25, [""], "what is spring like ?", True),
    F("in autumn it is", "windy", 20, [""], "what is autumn like ?"),
    F("when it rains the ground is", "wet", 12, [""]),
    # -- time of day
    F("the moon comes out at", "night", 50, ["", "", "every day "],
      "when does the moon come out ?", True),
    F("the stars come out at", "night", 25, [""], "when do the stars come out ?", True),
    F("the sun comes up in the", "morning", 30, ["", "every day "],
      "when does the sun come up ?", True),
    F("the sun goes down in the", "evening", 20, ["", "every day "]),
    F("at night it is", "dark", 18, [""]),
    F("at night we", "sleep", 15, [""]),
    F("we eat breakfast in the", "morning", 12, [""]),
    F("we eat lunch at", "noon", 10, [""]),
    F("we eat dinner in the", "evening", 10, [""]),
]

# Sums other than the tested ones: each a few times, so that "plus" has to
# look at both numbers.
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven",
           "eight", "nine", "ten"]
for x in range(1, 6):
    for y in range(1, 6):
        if (x, y) not in ((1, 1), (2, 2)):
            FACTS.append(F("%s plus %s is" % (NUMBERS[x], NUMBERS[y]),
                           NUMBERS[x + y], 5, [""]))


def fact_sentences(rng, fact):
    """All the sentences that carry one fact, count of them."""
    out = []
    for _ in range(fact["count"]):
        ctx = rng.choice(fact["contexts"])
        body = ctx + fact["prompt"] + " " + fact["answer"]
        r = rng.random()
        if fact["question"] and r < 0.15:
            out.append(fact["question"] + " " + body + " .")
        elif r < 0.25:
            out.append(body + " .")           # the plainest form
        else:
            out.append(frame(rng, body))
    return out


# ------------------------------------------------ everyday filler stories

PETS = [("cat", "meow"), ("dog", "woof"), ("duck", "quack"), ("pig", "oink"),
        ("hen", "cluck"), ("mouse", "squeak"), ("frog", "ribbit")]
PET_ADJ = ["small", "big", "happy", "old", "young", "soft", "funny", "sleepy",
           "quick", "lazy", "clever", "hungry"]
PLACES = ["park", "garden", "farm", "school", "beach", "town", "forest",
          "river", "shop", "zoo", "library", "market", "pond", "hill",
          "kitchen", "city", "village", "playground"]
THINGS = ["ball", "car", "door", "hat", "cup", "box", "bag", "bike", "kite",
          "book", "pen", "chair", "coat", "shoe", "bed", "house", "boat",
          "bus", "train", "flower", "sock", "cake", "bowl", "toy", "umbrella"]
COLOURS = ["red", "blue", "green", "yellow", "white", "black", "brown",
           "orange", "pink", "purple", "grey"]
FOODS = ["bread", "rice", "soup", "cheese", "eggs", "fish", "apples",
         "bananas", "carrots", "pasta", "beans", "cake", "grapes", "pears",
         "potatoes", "peas", "nuts", "yogurt", "pizza", "corn"]
MEALS = ["breakfast", "lunch", "dinner"]
FAMILY = ["mother", "father", "sister", "brother", "grandma", "grandpa",
          "aunt", "uncle", "friend", "cousin"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
        "sunday"]
JOBS = ["doctor", "teacher", "nurse", "cook", "farmer", "baker", "pilot",
        "driver", "vet", "shopkeeper", "singer", "painter"]
ANIMALS = ["cats", "dogs", "cows", "ducks", "sheep", "pigs", "horses",
           "hens", "birds", "fish", "frogs", "rabbits", "goats", "bees"]
WHERE = [("cows", "on the farm"), ("sheep", "on the farm"), ("pigs", "on the farm"),
         ("hens", "on the farm"), ("goats", "on the farm"), ("horses", "in the field"),
         ("ducks", "on the pond"), ("fish", "in the pond"), ("frogs", "by the pond"),
         ("birds", "in the tree"), ("bees", "in the garden"), ("rabbits", "in the field"),
         ("cats", "in the house"), ("dogs", "in the park")]
FEEL = ["happy", "sad", "tired", "hungry", "busy", "glad", "excited",
        "sleepy", "cold", "warm"]
VERBS_PLAY = ["play", "run", "walk", "read", "sing", "draw", "dance",
              "swim", "jump", "talk"]


def story(rng):
    """A small unit of everyday sentences that stays together on a line."""
    n, n2 = rng.sample(NAMES, 2)
    pet, sound = rng.choice(PETS)
    place = rng.choice(PLACES)
    kind = rng.randrange(14)
    if kind == 0:
        return ["%s has a %s ." % (n, pet),
                "the %s is %s ." % (pet, rng.choice(PET_ADJ)),
                "the %s says %s ." % (pet, sound)]
    if kind == 1:
        return ["%s and %s go to the %s ." % (n, n2, place),
                "they %s there all day ." % rng.choice(VERBS_PLAY),
                "then they go home ."]
    if kind == 2:
        thing, colour = rng.choice(THINGS), rng.choice(COLOURS)
        return ["%s has %s %s ." % (n, article(colour), thing),
                "the %s is %s and %s likes it ." % (thing, colour, n)]
    if kind == 3:
        f1, f2 = rng.sample(FOODS, 2)
        return ["%s likes %s ." % (n, f1),
                "%s does not like %s ." % (n, f2),
                "for %s we eat %s ." % (rng.choice(MEALS), f1)]
    if kind == 4:
        k = rng.randrange(2, 11)
        return ["%s is %s years old ." % (n, NUMBERS[k]),
                "next year %s will be %s ." % (n, NUMBERS[k + 1] if k < 10 else "eleven")]
    if kind == 5:
        k = rng.randrange(2, 11)
        animals, where = rng.choice(WHERE)
        return ["there are %s %s %s ." % (NUMBERS[k], animals, where),
                "%s counts them : %s ." % (n, " , ".join(NUMBERS[1:k + 1]))]
    if kind == 6:
        return ["on %s we go to the %s ." % (rng.choice(DAYS), place),
                "my %s comes with us ." % rng.choice(FAMILY)]
    if kind == 7:
        return ["%s wants to be %s ." % (n, article(rng.choice(JOBS))),
                "%s %s is %s ." % (his(n), rng.choice(FAMILY), article(rng.choice(JOBS)))]
    if kind == 8:
        return ["%s is %s today ." % (n, rng.choice(FEEL)),
                "%s asks why , and %s tells %s a story ." % (n2, n, n2)]
    if kind == 9:
        thing = rng.choice(THINGS)
        return ["%s lost the %s ." % (n, thing),
                "%s looks in the %s and finds it ." % (n2, place),
                "now %s is glad ." % n]
    if kind == 10:
        return ["%s reads a book about %s ." % (n, rng.choice(ANIMALS)),
                "the book is %s ." % rng.choice(["long", "short", "new", "old", "good", "funny"])]
    if kind == 11:
        day = rng.randrange(7)
        return ["today is %s ." % DAYS[day],
                "tomorrow is %s ." % DAYS[(day + 1) % 7]]
    if kind == 12:
        return ["%s and %s %s in the %s ." % (n, n2, rng.choice(VERBS_PLAY), place),
                "a %s watches them ." % pet]
    family = rng.choice(FAMILY)
    return ["%s helps %s %s in the %s ." % (n, his(n), family, place),
            "%s %s says thank you ." % (his(n), family)]


# Sentences that say a fact without its prompt, in the words of a class.
def restatements(rng):
    out = []
    pairs = [("blue", "the sky"), ("green", "grass"), ("white", "snow"),
             ("yellow", "a banana"), ("black", "coal"), ("red", "an apple")]
    for _ in range(60):
        colour, thing = rng.choice(pairs)
        out.append(rng.choice(["%s is the colour of %s ." % (colour, thing),
                               "i like %s because it is %s ." % (thing, colour),
                               "%s and %s are colours ." % (colour, rng.choice(COLOURS))]))
    opposites = [("hot", "cold"), ("big", "small"), ("up", "down"),
                 ("day", "night"), ("fast", "slow"), ("wet", "dry")]
    for _ in range(40):
        a, b = rng.choice(opposites)
        out.append(rng.choice(["%s and %s are opposites ." % (a, b),
                               "%s is not %s ." % (a, b)]))
    for _ in range(30):
        out.append(rng.choice(["we have two eyes and two ears .",
                               "we have one nose and one mouth .",
                               "we have ten fingers and ten toes .",
                               "a week has seven days .",
                               "one , two , three , four , five .",
                               "six , seven , eight , nine , ten ."]))
    return out


# ---------------------------------------------------- the words rule

TOKEN = re.compile(r"[A-Za-z\x80-\U0010ffff]+(?:'[A-Za-z\x80-\U0010ffff]+)*|[0-9]+|[^\sA-Za-z0-9\x80-\U0010ffff]")


def tokens(text):
    """paramscope's words rule (ASCII text): lowercased pieces."""
    return [t.lower() for t in TOKEN.findall(text)]


def is_word(t):
    return t[0].isalnum()


# -------------------------------------------------------------- checking

def next_words(toks, prompt):
    p = prompt.split()
    k = len(p)
    counts = collections.Counter()
    for i in range(len(toks) - k):
        if toks[i:i + k] == p:
            counts[toks[i + k]] += 1
    return counts


def check(toks, facts):
    """Every tested prompt: the expected word first, by a clear margin."""
    ok = True
    rows = []
    for prompt, answer in facts:
        c = next_words(toks, prompt)
        total = sum(c.values())
        top = c.most_common(3)
        share = c[answer] / total if total else 0.0
        runner = max([v for w, v in c.items() if w != answer] or [0])
        good = total >= 20 and top and top[0][0] == answer and share >= 0.6 \
            and c[answer] >= 2 * runner
        ok &= good
        rows.append("%-28s %-9s %4d  %5.1f%%  %s%s" % (
            prompt, answer, total, 100 * share,
            ", ".join("%s %d" % wv for wv in top), "" if good else "   <-- FAIL"))
    return ok, rows


# ------------------------------------------------------------------ main

def build(seed, target):
    rng = random.Random(seed)
    units = []
    for fact in FACTS:
        units.extend([s] for s in fact_sentences(rng, fact))
    units.extend([s] for s in restatements(rng))
    n_words = sum(sum(1 for t in tokens(s) if is_word(t)) for u in units for s in u)
    while n_words < target:
        u = story(rng)
        n_words += sum(sum(1 for t in tokens(s) if is_word(t)) for s in u)
        units.append(u)
    rng.shuffle(units)

    lines, i = [], 0
    while i < len(units):
        k = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
        lines.append(" ".join(s for u in units[i:i + k] for s in u))
        i += k
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "corpus.txt"))
    ap.add_argument("--facts", default=os.path.join(ROOT, "tools", "facts.txt"))
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--check", action="store_true",
                    help="print the statistics, write nothing")
    args = ap.parse_args()

    text = build(args.seed, TARGET_WORDS)
    toks = tokens(text)
    words = [t for t in toks if is_word(t)]
    tested = []
    for f in FACTS:
        if f["tested"] and (f["test_prompt"], f["answer"]) not in tested:
            tested.append((f["test_prompt"], f["answer"]))
    ok, rows = check(toks, tested)

    print("seed %d: %d lines, %d tokens, %d words, vocabulary %d (%d words)"
          % (args.seed, text.count("\n"), len(toks), len(words),
             len(set(toks)), len(set(words))))
    print("%-28s %-9s %4s  %6s  %s" % ("prompt", "expected", "n", "share", "most frequent next words"))
    for r in rows:
        print(r)
    if not ok:
        print("make_corpus: a tested fact is not clearly learnable; nothing written",
              file=sys.stderr)
        return 1
    if args.check:
        return 0
    with open(args.out, "w", encoding="utf-8", newline="\n") as fp:
        fp.write(text)
    with open(args.facts, "w", encoding="utf-8", newline="\n") as fp:
        for prompt, answer in tested:
            fp.write("%s\t%s\n" % (prompt, answer))
    print("wrote %s and %s (%d facts)" % (os.path.relpath(args.out, ROOT),
                                         os.path.relpath(args.facts, ROOT),
                                         len(tested)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
