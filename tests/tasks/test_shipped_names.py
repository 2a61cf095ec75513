"""The shipped translator carries numbers and times it never saw (and, not yet, names).

Invented names and places (none occurs in spa-eng.tsv.gz, in either language),
numbers and times; the issue's own examples are among them. The benchmark's
larger set (benchmarks/_mt_names.py, 240 sentences) uses other names.
"""

import pytest

import tasks

CASES = [
    ("Tengo 34 años.", ["34"]),
    ("Compré 12 huevos.", ["12"]),
    ("El tren sale a las 9:30.", ["9:30"]),
    ("Zenobia tiene 47 gatos.", ["Zenobia", "47"]),
    ("Mi vecino Anacleto trabaja en Quetzaltenango.", ["Anacleto", "Quetzaltenango"]),
    ("El avión a Chiclayo sale a las 6:45.", ["Chiclayo", "6:45"]),
    ("Filomena nació en 1872.", ["Filomena", "1872"]),
    ("Hay 5123 libros en la biblioteca de Tandil.", ["5123", "Tandil"]),
    ("Llamé a Gumersindo ayer.", ["Gumersindo"]),
    ("¿Conoces a Eleuterio?", ["Eleuterio"]),
    ("Rosalba y Casilda viven en Riobamba desde 2015.", ["Rosalba", "Casilda", "Riobamba", "2015"]),
    ("Hermenegildo compró 803 manzanas en Tarija.", ["Hermenegildo", "803", "Tarija"]),
]


@pytest.fixture(scope="module")
def mt():
    return tasks.load("translation")


def _carried(mt, beam_width, kind):
    out = mt.translate([s for s, _ in CASES], beam_width=beam_width)
    values = [
        (v, text)
        for (_, expect), text in zip(CASES, out)
        for v in expect
        if v[0].isdigit() == (kind == "numbers")
    ]
    return [v for v, text in values if v in text], values


@pytest.mark.parametrize("beam_width", [1, 4])
def test_unseen_numbers_and_times_come_through(mt, beam_width):
    carried, values = _carried(mt, beam_width, "numbers")
    # The shipped model carries 7 of these 9 (beam 4 and greedy: "6:45" -> "6:4:45", "803" ->
    # "833"); on the benchmark's 240 sentences 76.9 % of numbers and times.
    assert len(carried) >= 0.75 * len(values), (carried, values)


@pytest.mark.xfail(
    strict=True,
    reason="issue 17's goal (>= 90 % of unseen names carried) is not met yet: the shipped "
    "model spells unseen names in pieces but garbles them (benchmark: 10.0 % of names)",
)
def test_unseen_names_come_through(mt):
    carried, values = _carried(mt, 4, "names")
    assert len(carried) >= 0.9 * len(values), (carried, values)


def test_no_source_piece_is_unknown(mt):
    ids = mt.preprocessor([s for s, _ in CASES] + ["Ñandú ☃ 中文 «ÆØÅ»"])
    assert (ids != 1).all()
