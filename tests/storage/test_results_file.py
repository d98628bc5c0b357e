"""Results files and what the store makes of them, on the cases a real export brings: rows of one copy combined,
a generic ID column beside ours, a copy that contradicts its ID, percent cells from Excel, implausible fractions,
impossible numbers, and a row that would count a copy twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.outcomes import combined, wilson_lower
from storage.results_file import Targets, prepare_results, result_columns

TARGETS = Targets(text_of={1: "여름엔 린넨이죠", 2: "시원하게 입어요"},
                  by_text={"여름엔 린넨이죠": [(1, "여름엔 린넨이죠")], "시원하게 입어요": [(2, "시원하게 입어요")],
                           "여름엔 역시 린넨": [(1, "여름엔 역시 린넨")]})  # fmt: skip


def _csv(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "results.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_rows_of_one_copy_combine_by_counts_else_by_sends_else_plainly() -> None:
    counted = combined([{"sends": 1000, "clicks": 30, "ctr": 0.03}, {"sends": 3000, "clicks": 30, "ctr": 0.01}])
    assert (counted["sends"], counted["clicks"], counted["ctr"], counted["counted"]) == (4000, 60, 0.015, True)
    weighted = combined([{"sends": 1000, "ctr": 0.03}, {"sends": 3000, "ctr": 0.01}])
    assert weighted["clicks"] is None and weighted["ctr"] == pytest.approx(0.015) and not weighted["counted"]
    plain = combined([{"ctr": 0.03}, {"ctr": 0.01, "conversions": 4}])
    assert plain["ctr"] == pytest.approx(0.02) and plain["conversions"] is None  # one row lacks conversions: unknown


def test_the_wilson_lower_bound_ranks_surer_rates_first() -> None:
    assert wilson_lower(1, 10) == pytest.approx(0.0179, abs=1e-4)
    assert wilson_lower(400, 5000) == pytest.approx(0.0727, abs=1e-4)
    assert wilson_lower(0, 0) == 0.0


def test_a_specific_id_column_wins_over_a_generic_one_and_two_alike_are_a_question() -> None:
    assert result_columns(["ID", "후보 ID", "클릭수"], {}) == {"후보 ID": "candidate_id", "클릭수": "clicks"}
    with pytest.raises(ValueError, match=r"could each be the candidate_id; name one with --map"):
        result_columns(["ID", "id", "클릭수"], {})
    with pytest.raises(ValueError, match="does not have"):
        result_columns(["후보 ID", "클릭수"], {"노출": "sends"})


def test_a_copy_that_is_not_its_ids_is_a_bad_row_and_an_edit_of_it_is_what_went_out(tmp_path: Path) -> None:
    rows, report = prepare_results(_csv(tmp_path, ["후보 ID,카피,클릭률", "1,시원하게 입어요,3%", "1,여름엔 역시 린넨,3%"]),
                                   TARGETS)  # fmt: skip
    assert report.bad == [(2, "the copy is not candidate 1's (nor an edit of it); fix the ID or the copy, or leave "
                              "the copy empty")]  # fmt: skip
    assert [(r["candidate_id"], r["text"]) for r in rows] == [(1, "여름엔 역시 린넨")]


@pytest.mark.parametrize(("cell", "problem"), [
    ("1,5%", "CTR '1,5%' is not a number"),
    ("inf", "CTR 'inf' is outside 0-100 %"),
])  # fmt: skip
def test_odd_ctr_cells_are_bad_rows(tmp_path: Path, cell: str, problem: str) -> None:
    _, report = prepare_results(_csv(tmp_path, ["후보 ID\tCTR", f"1\t{cell}"]), TARGETS)
    assert report.bad[0][1].startswith(problem)


def test_impossible_counts_are_bad_rows_that_say_what_is_wrong(tmp_path: Path) -> None:
    lines = ["후보 ID,발송수,클릭수,전환수", "1,inf,3,", "1,100,,150", "2,0,0,"]
    _, report = prepare_results(_csv(tmp_path, lines), TARGETS)
    assert [r for _, r in report.bad] == ["sends 'inf' must be a whole number, 0 or more",
                                          "conversions (150) exceed sends (100)",
                                          "sends is 0: there is no rate to learn from; give the real number of sends"]  # fmt: skip


def test_fractions_that_look_like_percentages_are_warned_about(tmp_path: Path) -> None:
    rows, report = prepare_results(_csv(tmp_path, ["후보 ID,CTR", "1,0.5", "2,0.8"]), TARGETS)
    assert not report.ctr_as_percent and [r["ctr"] for r in rows] == [0.5, 0.8]
    assert report.warnings == ["CTR read as a fraction, so 80% is the highest: if the column holds percentages, "
                               "name it 'CTR(%)' or write the values with %"]  # fmt: skip
    _, plain = prepare_results(_csv(tmp_path, ["후보 ID,CTR", "1,0.031", "2,0.02"]), TARGETS)
    assert plain.warnings == []


def test_percent_formatted_excel_cells_are_read_as_shown(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["후보 ID", "CTR(%)"])
    book.active.append([1, 0.032])
    book.active["B2"].number_format = "0.0%"  # Excel shows 3.2 % and stores 0.032
    book.active.append([2, 2.5])  # typed as a number under a (%) header: 2.5 %
    book.save(tmp_path / "r.xlsx")
    rows, report = prepare_results(tmp_path / "r.xlsx", TARGETS)
    assert report.bad == [] and [r["ctr"] for r in rows] == [pytest.approx(0.032), pytest.approx(0.025)]


def test_a_row_that_would_count_a_copy_twice_is_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["후보 ID,클릭률,발송일", "1,3%,", "2,3%,2026-11-02"])
    _, report = prepare_results(path, TARGETS, recorded={1: {"2026-11-02": "a.csv"}, 2: {"": "a.csv"}})
    assert [n for n, _ in report.bad] == [2, 3]
    assert "recorded dated 2026-11-02" in report.bad[0][1] and "copybot results remove --source" in report.bad[0][1]
    assert "recorded without a date" in report.bad[1][1]
    same, ok = prepare_results(path, TARGETS, recorded={1: {"": "a.csv"}, 2: {"2026-11-01": "a.csv"}})
    assert ok.bad == [] and len(same) == 2
