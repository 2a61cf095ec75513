"""The shipped translator carries names, numbers and times it never saw (the name guard).

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
@pytest.mark.parametrize("kind", ["names", "numbers"])
def test_unseen_names_numbers_and_times_come_through(mt, beam_width, kind):
    carried, values = _carried(mt, beam_width, kind)
    # Issue 17's goal: >= 90 %. The shipped model carries all of these; without the name
    # guard (keep_names=False) 7 of its 9 numbers and none of its 19 names.
    assert len(carried) >= 0.9 * len(values), (carried, values)


def test_without_the_guard_the_model_garbles_them(mt):
    out = mt.translate([s for s, _ in CASES], beam_width=4, keep_names=False)
    names = [v for (_, expect), text in zip(CASES, out) for v in expect if not v[0].isdigit()]
    carried = [v for (_, expect), text in zip(CASES, out) for v in expect if v in text]
    assert len([v for v in carried if v in names]) <= 0.2 * len(names)


def test_no_source_piece_is_unknown(mt):
    ids = mt.preprocessor([s for s, _ in CASES] + ["Ñandú ☃ 中文 «ÆØÅ»"])
    assert (ids != 1).all()


def test_the_command_line_keeps_names_unless_told_not_to(capsys):
    from tasks.cli import main

    assert main(["translate", "Xiomara nació en 1862.", "--beam-width", "4"]) == 0
    assert capsys.readouterr().out == "Xiomara was born in 1862.\n"
    assert main(["translate", "Xiomara nació en 1862.", "--no-keep-names"]) == 0
    assert "Xiomara" not in capsys.readouterr().out
