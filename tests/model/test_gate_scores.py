"""Gate scores kept with their model: reused while its folder and the scoring context stay, never after."""

from __future__ import annotations

import shutil
from pathlib import Path

from model.training.evaluate import Metrics, evaluate_engine
from model.training.gate_scores import GateScores, scoring_context
from model.training.registry import SCORES_DIR
from model.writing.engine import LocalEngine

PROMPT = "<제품>린넨 셔츠<행사>여름 세일<30대><sns><polite><카피>"
GOOD = {"prompt": PROMPT, "completion": "여름 세일, 지금 만나 보세요"}
PAIRS = [{"prompt": PROMPT, "chosen": GOOD["completion"], "rejected": "린넨 셔츠 여름 세일"}]
BRIEFS = [{"product": "린넨 셔츠", "event": "여름 세일", "channel": "sns"}]


def _score(engine: LocalEngine, scores: GateScores) -> tuple[Metrics, list[tuple[float, float]]]:
    return evaluate_engine(
        engine,
        heldout_sft=[GOOD],
        heldout_pairs=PAIRS,
        heldout_corpus=[GOOD],
        briefs=BRIEFS,
        spans=set(),
        scores=scores,
    )


def test_kept_scores_equal_fresh_ones_and_a_changed_folder_or_context_scores_again(
    starter_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "starter"
    shutil.copytree(starter_dir, folder)
    engine = LocalEngine(folder, version="starter")
    context = scoring_context(engine.model, n=5)
    fresh = GateScores.of(tmp_path, "base-starter", folder, context)
    first = _score(engine, fresh)
    # the pair's two copies and 6 generations (one brief at every age group) are scored; the liked copy, scored as
    # the pair's chosen one, is kept for the feedback and the corpus loss
    assert fresh.summary() == {"kept": 2, "scored": 2 + 6}
    fresh.save()
    assert (tmp_path / SCORES_DIR / "base-starter.json").is_file()

    again = GateScores.of(tmp_path, "base-starter", folder, context)
    assert _score(engine, again) == first  # the same metrics and margins, nothing computed
    assert again.summary() == {"kept": 4 + 6, "scored": 0}

    # another scoring context (here: another number of candidates) scores again
    other = GateScores.of(tmp_path, "base-starter", folder, scoring_context(engine.model, n=4))
    assert other.logprobs == {} and other.generated == {}

    # the folder changed (a file rewritten): what was kept no longer counts
    info = folder / "config.json"
    info.write_text(info.read_text("utf-8") + "\n", "utf-8")
    changed = GateScores.of(tmp_path, "base-starter", folder, context)
    assert changed.logprobs == {} and changed.generated == {}


def test_a_damaged_score_file_is_ignored_and_rewritten(tmp_path: Path) -> None:
    folder = tmp_path / "v0001"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    file = tmp_path / SCORES_DIR / "v0001.json"
    file.parent.mkdir()
    file.write_text("{not json", "utf-8")
    calls: list[list[str]] = []

    def compute(prompts: list[str], completions: list[str]) -> list[tuple[float, int]]:
        calls.append(completions)
        return [(-float(len(c)), len(c)) for c in completions]

    scores = GateScores.of(tmp_path, "v0001", folder, "ctx")
    assert scores.sequence_logprobs(compute, ["p", "p"], ["가나", "다"]) == [(-2.0, 2), (-1.0, 1)]
    scores.save()
    kept = GateScores.of(tmp_path, "v0001", folder, "ctx")
    assert kept.sequence_logprobs(compute, ["p", "p"], ["다", "라라라"]) == [(-1.0, 1), (-3.0, 3)]
    assert calls == [["가나", "다"], ["라라라"]]  # only the copy never scored was computed


def test_the_gates_writes_side_by_side_write_what_each_writes_alone(starter_dir: Path) -> None:
    from model.training.evaluate import write_all
    from model.writing.writer import CopyWriter

    # with its retries, as the gate writes: a text that is not copy (model/writing/form.py) is written again, and
    # the retry's batchmates must not change it either
    writer = CopyWriter(LocalEngine(starter_dir, version="starter"))
    ages = ("10대", "20대", "50대", "60대+")
    asks = [({**BRIEFS[0], "age": age, "n": 5}, 1000 + j) for j, age in enumerate(ages)]
    together = write_all(writer, asks)  # through a batcher, four writers at once
    alone = [write_all(writer, [ask])[0] for ask in asks]  # one at a time, on the engine itself
    assert together == alone and all(written and len(written) == 5 for written in together)
