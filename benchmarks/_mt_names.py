"""Names and numbers that must come through translation: sentences built from templates
around people's names, places, numbers and times that never occur in the data file.

Each case is a Spanish sentence and the strings its English translation must
contain verbatim (the name, the place, the number, the time). The names and
places are checked against every word of ``spa-eng.tsv.gz`` (both languages),
the numbers and times against every string of digits in it, so none was seen
in training. Seeded: the same cases every run.
"""

from __future__ import annotations

import re

import numpy as np

NAMES = (
    "Xiomara Baltasar Eulalia Tadeo Rigoberta Anselmo Leocadia Fulgencio Casimiro Berenice "
    "Ximena Edelmira Gaspar Nicanor Remedios Ulises Yolanda Zacarías Amparo Benigno Crisanto "
    "Dorotea Eusebio Genaro Hortensia Ildefonso Jacinta Leandro Macario Nieves Olegario "
    "Prudencia Quintín Rosendo Sagrario Teodora Wenceslao Zoraida Leónidas Ramiro Itziar Aitor "
    "Maite Iker Nerea Gorka Ainhoa Rocío"
).split()
PLACES = (
    "Villarrica Tarapacá Chivilcoy Huancayo Cuenca Salamanca Valparaíso Mendoza Cochabamba "
    "Arequipa Tegucigalpa Maracaibo Pamplona Logroño Albacete Cáceres Badajoz Oaxaca Puebla "
    "Tucumán Ushuaia Antofagasta Iquique Cusco Trujillo Guayaquil Barranquilla Medellín Bilbao "
    "Zaragoza Sevilla Granada Málaga Alicante Murcia Valladolid"
).split()
# (Spanish template, the fields whose values must appear in the English)
TEMPLATES = [
    ("{name} tiene {n} libros.", ("name", "n")),
    ("{name} vive en {place} desde {year}.", ("name", "place", "year")),
    ("Mi amigo {name} trabaja en {place}.", ("name", "place")),
    ("{name} compró {n} manzanas.", ("name", "n")),
    ("El tren a {place} sale a las {time}.", ("place", "time")),
    ("{name} y {name2} llegaron a {place} ayer.", ("name", "name2", "place")),
    ("Hay {n} personas en {place}.", ("n", "place")),
    ("Llamé a {name} esta mañana.", ("name",)),
    ("¿Conoces a {name}?", ("name",)),
    ("{name} nació en {year}.", ("name", "year")),
    ("La reunión con {name} es a las {time}.", ("name", "time")),
    ("{name} pagó {n} dólares por el coche.", ("name", "n")),
]


# A second set, written after the name guard's design was fixed on the first: other
# templates (two-word names, two sentences, several numbers), other names and places.
OTHER_NAMES = (
    "Yésica Florencio Agripina Eleuterio Clotilde Heriberto Petronila Segismundo Filiberta "
    "Adalberto Marisol Ovidio Belinda Gumersindo Candelaria Herminio Apolonia Everardo "
    "Brígida Saturnino Eladio Rufina Teófilo Visitación Nemesio"
).split()
OTHER_SURNAMES = "Quispe Mamani Huamán Villalobos Echeverría Zubizarreta Arrieta Cifuentes".split()
OTHER_PLACES = (
    "Riobamba Cajamarca Paysandú Rancagua Chiclayo Temuco Popayán Tarija Ibagué Tlaxcala "
    "Zacatecas Ourense Huesca Teruel Soria Matagalpa Jinotega Quetzaltenango Ayacucho Piura"
).split()
OTHER_TEMPLATES = [
    ("{name} {surname} llegó a {place} el lunes.", ("name", "surname", "place")),
    ("Ayer {name} me dio {n} euros.", ("name", "n")),
    ("El vuelo de {name} sale de {place} a las {time}.", ("name", "place", "time")),
    ("{name} escribió una carta a {name2}.", ("name", "name2")),
    ("Vivo en {place} con mi hermana {name}.", ("place", "name")),
    ("La población de {place} es de {n} habitantes.", ("place", "n")),
    ("{name} corrió {n} metros en {n2} segundos.", ("name", "n", "n2")),
    ("Nos vemos en {place} a las {time}, {name}.", ("place", "time", "name")),
    ("En {year}, {name} se mudó a {place}.", ("year", "name", "place")),
    ("Estoy cansado. {name} no vino hoy.", ("name",)),
    ("¿Dónde está {name}? Se fue a {place}.", ("name", "place")),
    ("Mi número es el {n}.", ("n",)),
]


def _unseen(candidates, seen):
    return [c for c in candidates if c not in seen]


def cases(data_text: str, n: int = 240, seed: int = 0, other: bool = False) -> list[dict]:
    """``n`` cases ``{"source", "expect": [strings]}`` built from names, places, numbers
    and times absent from ``data_text`` (the whole data file); ``other``: the second set."""
    words = set(re.findall(r"\w+", data_text))
    digits = set(re.findall(r"\d+(?::\d+)?", data_text))
    names = _unseen(OTHER_NAMES if other else NAMES, words)
    places = _unseen(OTHER_PLACES if other else PLACES, words)
    surnames = _unseen(OTHER_SURNAMES, words)
    templates = OTHER_TEMPLATES if other else TEMPLATES
    rng = np.random.RandomState(seed)
    numbers = _unseen([str(x) for x in rng.randint(100, 10000, 400)], digits)
    years = _unseen([str(x) for x in range(1600, 2100)], digits)
    times = _unseen([f"{h}:{m:02d}" for h in range(1, 13) for m in range(0, 60, 5)], digits)
    out = []
    for i in range(n):
        template, fields = templates[i % len(templates)]
        a, b = rng.choice(len(names), 2, replace=False)
        values = {
            "name": names[a],
            "name2": names[b],
            "place": places[rng.randint(len(places))],
            "n": numbers[rng.randint(len(numbers))],
            "year": years[rng.randint(len(years))],
            "time": times[rng.randint(len(times))],
        }
        if other:  # (drawn after the first set's values: that set is unchanged)
            values["n2"] = numbers[rng.randint(len(numbers))]
            values["surname"] = surnames[rng.randint(len(surnames))]
        out.append({"source": template.format(**values), "expect": [values[f] for f in fields]})
    return out


def score(cases_: list[dict], translations: list[str]) -> dict:
    """Share of the expected strings found verbatim, overall and by kind."""
    kinds = {"names": 0, "numbers": 0}
    found = {"names": 0, "numbers": 0}
    failures = []
    for case, text in zip(cases_, translations):
        missing = []
        for value in case["expect"]:
            kind = "numbers" if value[0].isdigit() else "names"
            kinds[kind] += 1
            if value in text:
                found[kind] += 1
            else:
                missing.append(value)
        if missing:
            failures.append({"source": case["source"], "translation": text, "missing": missing})
    total = sum(kinds.values())
    return {
        "carried": round(sum(found.values()) / total, 4),
        "names_carried": round(found["names"] / kinds["names"], 4),
        "numbers_carried": round(found["numbers"] / kinds["numbers"], 4),
        "values": total,
        "sentences": len(cases_),
        "sentences_all_carried": len(cases_) - len(failures),
        "failures": failures[:20],
    }
