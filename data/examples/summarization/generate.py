"""Writes the summarization example (seeded, so the files are reproducible): short news-style documents made from
templates over invented but plausible facts, each with a one-sentence summary that restates the key facts in
other words and order (not the first sentence: a model must pick the facts out).

    python data/examples/summarization/generate.py

train.tsv / dev.tsv / test.tsv, header ``document<TAB>summary``, no tabs or newlines inside a field.
"""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 7
N = {"train": 640, "dev": 120, "test": 120}

CITIES = ["Leeds", "Porto", "Lyon", "Graz", "Utrecht", "Malmo", "Bilbao", "Turin", "Aarhus", "Krakow", "Ghent",
          "Dublin", "Bristol", "Seville", "Bergen", "Tampere", "Brno", "Cork", "Geneva", "Hamburg"]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TEAMS = [
    "Rovers",
    "United",
    "City",
    "Athletic",
    "Wanderers",
    "Rangers",
    "Albion",
    "Town",
    "Harriers",
    "Dynamo",
]
PEOPLE = ["Anna Berg", "Tom Walsh", "Maria Costa", "Jan Novak", "Lena Fischer", "Omar Haddad", "Sara Lind",
          "Paul Moreau", "Eva Kowalska", "Luis Ortega", "Nina Petrov", "David Kim", "Clara Rossi", "Ben Adler"]  # fmt: skip
COMPANIES = ["Nordline", "Aurex", "Veltra", "Kestrel Foods", "Brightwave", "Halden Steel", "Orbis Mobile",
             "Greenfield Energy", "Polaris Retail", "Meridian Air"]  # fmt: skip
INDUSTRIES = ["shipping", "software", "chemicals", "food", "telecoms", "steel", "energy", "retail", "airline"]
REGIONS = ["Asia", "Europe", "North America", "South America", "Africa", "the Middle East"]
PRODUCTS = [
    "electric scooter",
    "smart watch",
    "folding phone",
    "home battery",
    "e-reader",
    "drone",
    "heat pump",
]
ANIMALS = ["otters", "beavers", "storks", "wolves", "lynx", "seals", "bison", "cranes"]
WEATHER = ["snow", "rain", "hail"]


def sports(r: random.Random) -> tuple[str, str]:
    city, team, team2 = r.choice(CITIES), *r.sample(TEAMS, 2)
    home, away = f"{city} {team}", f"{r.choice(CITIES)} {team2}"
    s1, s2 = r.randint(2, 5), r.randint(0, 1)
    player, coach, day = r.choice(PEOPLE), r.choice(PEOPLE), r.choice(DAYS)
    doc = (f"A crowd of {r.randint(8, 60)},{r.randint(100, 999)} watched on {day} as {home} played {away}. "
           f"The visitors kept the game level until half time, but {player} scored twice after the break. "
           f"{home} won the match {s1}-{s2}. Coach {coach} praised the defence and said the squad had worked "
           f"hard all week. The result lifts the club to {r.choice(['second', 'third', 'fourth', 'fifth'])} in the table.")  # fmt: skip
    return doc, f"{home} beat {away} {s1}-{s2} with two goals from {player}."


def earnings(r: random.Random) -> tuple[str, str]:
    company, industry, region = r.choice(COMPANIES), r.choice(INDUSTRIES), r.choice(REGIONS)
    up = r.random() < 0.6
    pct, profit, ceo = r.randint(3, 40), r.randint(12, 900), r.choice(PEOPLE)
    move = "rose" if up else "fell"
    why = f"strong demand in {region}" if up else f"weak sales in {region}"
    doc = (f"{company}, the {r.choice(CITIES)}-based {industry} group, reported results on {r.choice(DAYS)}. "
           f"Chief executive {ceo} told analysts that the quarter had been shaped by {why}. "
           f"Quarterly profit {move} {pct} percent to {profit} million euros. "
           f"Shares {'gained' if up else 'lost'} {r.randint(1, 9)} percent in early trading.")  # fmt: skip
    return doc, f"{company} profit {'up' if up else 'down'} {pct} percent to {profit} million euros on {why}."


def weather(r: random.Random) -> tuple[str, str]:
    kind, city, day = r.choice(WEATHER), r.choice(CITIES), r.choice(DAYS)
    amount, wind = r.randint(5, 40), r.randint(50, 120)
    doc = (f"Forecasters have issued a warning for the area around {city}. "
           f"Heavy {kind} is expected from early {day}, with up to {amount} millimetres in places, and gusts "
           f"could reach {wind} kilometres per hour. Schools will close at noon and drivers are asked to avoid "
           f"mountain roads. Trains are expected to run on a reduced timetable.")  # fmt: skip
    return doc, f"Heavy {kind} and {wind} km/h winds expected around {city} on {day}; schools close early."


def launch(r: random.Random) -> tuple[str, str]:
    company, product, price = r.choice(COMPANIES), r.choice(PRODUCTS), r.randint(2, 19) * 50 - 1
    month = r.choice(["March", "April", "May", "June", "September", "October", "November"])
    doc = (f"At an event in {r.choice(CITIES)}, {company} showed a new {product} to reporters. "
           f"The company says the device lasts {r.randint(2, 9)} days on one charge and weighs less than its "
           f"rivals. It will go on sale in {month} at {price} euros. Analysts said the price was lower than "
           f"expected.")  # fmt: skip
    return doc, f"{company} will sell its new {product} from {month} for {price} euros."


def nature(r: random.Random) -> tuple[str, str]:
    animals, city, n = r.choice(ANIMALS), r.choice(CITIES), r.randint(3, 60)
    years, lead = r.randint(20, 150), r.choice(PEOPLE)
    doc = (f"Researchers near {city} have counted {n} {animals} along the river this spring. "
           f"It is the first time the animals have been seen there in {years} years, said {lead}, who led the "
           f"survey. Volunteers set up cameras on both banks last autumn. The team hopes the population will "
           f"keep growing if the water stays clean.")  # fmt: skip
    return doc, f"{n} {animals} seen near {city} for the first time in {years} years."


def strike(r: random.Random) -> tuple[str, str]:
    city, day, hours = r.choice(CITIES), r.choice(DAYS), r.choice([12, 24, 48])
    workers = r.choice(
        ["bus drivers", "train drivers", "airport staff", "nurses", "teachers", "port workers"]
    )
    raise_ = r.randint(4, 15)
    doc = (f"Union leaders in {city} said talks with employers had broken down. "
           f"{workers.capitalize()} will walk out for {hours} hours from {day}, demanding a pay rise of "
           f"{raise_} percent. Employers have offered less than half of that. Officials warned of long delays "
           f"and urged people to plan ahead.")  # fmt: skip
    return (
        doc,
        f"{workers.capitalize()} in {city} strike for {hours} hours from {day} over a {raise_} percent pay claim.",
    )


KINDS = (sports, earnings, weather, launch, nature, strike)


def main() -> None:
    rng = random.Random(SEED)
    seen: set[str] = set()
    for split, n in N.items():
        rows = []
        while len(rows) < n:
            doc, summary = rng.choice(KINDS)(rng)
            if doc not in seen:  # no document in two splits
                seen.add(doc)
                rows.append(f"{doc}\t{summary}")
        (HERE / f"{split}.tsv").write_text("document\tsummary\n" + "\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
