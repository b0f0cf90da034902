"""Writes the small example data sets in this folder (seeded, so the files are reproducible).

news_topic/{train,dev}.csv: headerless CSV as public news-topic files come: label 1..4 (World, Sports,
Business, Sci/Tech), a title and a description; quoted fields with commas, doubled quotes and a few
embedded newlines. pairs/{train,dev}.jsonl: NLI-style sentence pairs with nested fields
({"pair": {"premise", "hypothesis"}, "gold": entailment|neutral|contradiction}).

    python data/examples/generate.py
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 13
N_NEWS = {"train": 480, "dev": 160}
N_PAIRS = {"train": 450, "dev": 150}

CITIES = ["Nairobi", "Jakarta", "Lima", "Warsaw", "Manila", "Ankara", "Hanoi", "Bogota", "Kyiv", "Dhaka",
          "Santiago", "Accra", "Tbilisi", "Rabat", "Canberra", "Oslo", "Seoul", "Brasilia"]  # fmt: skip
WORLD = {
    "titles": [
        "Ceasefire talks resume in {city} as envoys press for a deal",
        "Thousands march in {city} over disputed election results",
        "Floods displace families across the region around {city}",
        "Foreign ministers meet in {city} to discuss border tensions",
        "{city} recalls ambassador after diplomatic row",
        "Aid convoy reaches {city} after weeks of delays",
        "Parliament in {city} votes to extend state of emergency",
        'UN envoy warns of "grave" humanitarian crisis near {city}',
    ],
    "descriptions": [
        "Officials said negotiators met for a third day, but no agreement was reached on prisoner exchanges.",
        "Police used tear gas to disperse crowds, witnesses said, as opposition leaders called for a recount.",
        "The government said {n} people had been evacuated, and relief agencies appealed for tents, food and water.",
        "The talks, the first in {n} months, are expected to focus on trade routes, refugees and security.",
        'The foreign ministry called the remarks "unacceptable" and summoned the envoy for an explanation.',
        "Trucks carrying medicine and flour crossed the border at dawn, according to a statement from the Red Cross.",
        "Lawmakers approved the measure by {n} votes, despite protests from rights groups.",
    ],
}
SPORTS = {
    "titles": [
        "{team} edge {team2} in overtime thriller",
        "Veteran striker signs two-year deal with {team}",
        "{team} coach fired after fifth straight loss",
        "Injury rules {team} captain out of semi-final",
        "{team} clinch title with a game to spare",
        "Record crowd watches {team} beat {team2}",
        "Marathon champion breaks course record in {city}",
        "{team} rally from two goals down to stun {team2}",
    ],
    "descriptions": [
        "The goal came in the {n}th minute, and the home fans, who had waited all season, poured onto the pitch.",
        "The club confirmed the move on Monday, saying the forward had passed a medical.",
        'The board said it was "time for a new direction" after a run of poor results.',
        "Scans showed a torn hamstring, the team doctor said, and he is expected to miss {n} weeks.",
        "Their goalkeeper made {n} saves, including a penalty, to keep the lead intact.",
        "She finished in two hours and {n} minutes, beating the old mark set in 2011.",
    ],
}
TEAMS = ["Rovers", "United", "the Falcons", "the Tigers", "City", "the Hawks", "Athletic", "the Mariners",
         "the Comets", "Wanderers"]  # fmt: skip
BUSINESS = {
    "titles": [
        "{company} shares jump after earnings beat forecasts",
        "{company} to cut {n} jobs in restructuring",
        "Central bank holds rates steady, signals caution",
        "Oil prices slip as inventories rise",
        "{company} agrees to buy rival in ${n} billion deal",
        "Retail sales rise for third month, beating estimates",
        "{company} recalls vehicles over brake fault",
        "Inflation eases to {n}.{n2} percent, lowest in two years",
    ],
    "descriptions": [
        "Revenue rose {n} percent in the quarter, the company said, driven by strong demand in Asia.",
        "The company said the cuts, mostly in management, would save about ${n} million a year.",
        "Policymakers voted {n2} to {n3} to keep borrowing costs unchanged, citing uncertain growth.",
        "Brent crude fell {n2} percent to ${n} a barrel after a report showed stockpiles, not demand, were growing.",
        "The deal, which still needs approval from regulators, values the target at a {n} percent premium.",
        "Analysts said the figures, while encouraging, did not yet point to a lasting recovery.",
    ],
}
COMPANIES = ["Northwind", "Helix Motors", "Orbis Bank", "Tandem Foods", "Altura Energy", "Brightline Retail",
             "Kestrel Air", "Meridian Pharma", "Quanta Steel", "Lumen Telecom"]  # fmt: skip
SCITECH = {
    "titles": [
        "New telescope images reveal a distant galaxy cluster",
        "{company} unveils faster chip for laptops",
        "Researchers sequence genome of a rare deep-sea fish",
        "Software update fixes security flaw in millions of routers",
        "Startup launches satellite to track methane leaks",
        "Study finds bees can learn to count to {n2}",
        "{company} opens its AI model to outside developers",
        "Battery breakthrough could double electric car range",
    ],
    "descriptions": [
        "The images, taken over {n} hours of exposure, show light that left the galaxies billions of years ago.",
        "The company said the processor uses {n} percent less power, and the first machines ship in spring.",
        "Scientists said the genome, which has about {n} thousand genes, may explain how the fish survives the cold.",
        "Users are advised to install the patch, which closes a hole that let attackers read passwords.",
        "The satellite, about the size of a suitcase, carries a sensor that can spot leaks from {n} km up.",
        "In the experiment, insects were rewarded with sugar water, the researchers wrote in the journal.",
    ],
}
CLASSES = [(1, WORLD), (2, SPORTS), (3, BUSINESS), (4, SCITECH)]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(city=rng.choice(CITIES), team=rng.choice(TEAMS), team2=rng.choice(TEAMS),
                           company=rng.choice(COMPANIES), n=rng.randint(3, 95), n2=rng.randint(2, 9),
                           n3=rng.randint(1, 2))  # fmt: skip


def news_rows(n: int, rng: random.Random) -> list[list[str]]:
    rows = []
    for i in range(n):
        label, c = CLASSES[i % 4]
        title = _fill(rng.choice(c["titles"]), rng)
        description = _fill(rng.choice(c["descriptions"]), rng)
        if rng.random() < 0.3:
            description += " " + _fill(rng.choice(c["descriptions"]), rng)
        if rng.random() < 0.03:
            description = description.replace(". ", ".\n", 1)  # a line break inside a quoted field
        rows.append([str(label), title, description])
    rng.shuffle(rows)
    return rows


SCENES = [  # (subject, action, object, place, a looser action, a contradicting action, an added detail)
    ("A man", "is playing", "a guitar", "on a stage", "is playing an instrument", "is sleeping", "for a crowd of fans"),
    ("A woman", "is reading", "a newspaper", "in a cafe", "is looking at some text", "is swimming", "about the election"),
    ("Two children", "are building", "a sandcastle", "on the beach", "are playing with sand", "are sitting in a classroom", "for a contest"),
    ("A chef", "is slicing", "onions", "in a busy kitchen", "is preparing food", "is driving a bus", "for a wedding dinner"),
    ("A dog", "is chasing", "a red ball", "across a park", "is running outside", "is asleep on a sofa", "thrown by its owner"),
    ("An old man", "is feeding", "pigeons", "in a square", "is giving food to birds", "is climbing a mountain", "with bread from a bakery"),
    ("A cyclist", "is riding", "a bicycle", "up a steep hill", "is on a bike", "is sitting on a train", "in a race"),
    ("A girl", "is painting", "a portrait", "in a studio", "is making a picture", "is singing in a choir", "of her grandmother"),
    ("Three workers", "are repairing", "a road", "near a bridge", "are doing construction work", "are watching a film", "at night"),
    ("A teenager", "is skating", "down a ramp", "at the skate park", "is doing a sport", "is doing homework at a desk", "in front of friends"),
    ("A nurse", "is checking", "a patient", "in a hospital room", "is at work", "is fishing on a lake", "before surgery"),
    ("A farmer", "is harvesting", "wheat", "in a large field", "is working outdoors", "is shopping in a mall", "before the rain"),
]  # fmt: skip


def pair_rows(n: int, rng: random.Random, start: int) -> list[dict]:
    rows = []
    for i in range(n):
        subj, act, obj, place, loose, contra, detail = rng.choice(SCENES)
        premise = f"{subj} {act} {obj} {place}."
        gold = ("entailment", "neutral", "contradiction")[i % 3]
        if gold == "entailment":
            hyp = rng.choice(
                [f"{subj} {loose}.", f"{subj} {act} {obj}.", f"Someone {act.split()[-1]} {obj}."]
            )
        elif gold == "neutral":
            hyp = f"{subj} {act} {obj} {detail}."
        else:
            hyp = f"{subj} {contra}."
        rows.append({"id": start + i, "pair": {"premise": premise, "hypothesis": hyp}, "gold": gold,
                     "meta": {"source": "generated", "annotators": rng.randint(3, 5)}})  # fmt: skip
    return rows


def main() -> None:
    rng = random.Random(SEED)
    (HERE / "news_topic").mkdir(exist_ok=True)
    for split, n in N_NEWS.items():
        with open(HERE / "news_topic" / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL).writerows(news_rows(n, rng))
    (HERE / "pairs").mkdir(exist_ok=True)
    start = 0
    for split, n in N_PAIRS.items():
        rows = pair_rows(n, rng, start)
        start += n
        (HERE / "pairs" / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
