"""`copybot retrain --from-corpus` as a team runs it on day one: import a scored archive, run one command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import Store
from tests.cli import run

OPENINGS = ("지금 바로 만나보세요", "여름을 시원하게 보내요", "가볍게 챙겨 가세요", "특별한 가격으로 준비했어요")


def _scored_archive(path: Path, briefs: int = 30) -> Path:
    """`briefs` briefs of four copies each, with a CTR column; the copy opening with OPENINGS[0] did best."""
    lines = ["카피,제품,행사,연령,채널,CTR(%)"]
    for b in range(briefs):
        for i, opening in enumerate(OPENINGS):
            lines.append(
                f"{opening} 상품{b} {i},상품 {b},여름 세일,{('20대', '30대')[b % 2]},sns,{4.0 - i + b / 100:.2f}"
            )
    path.write_bytes("\n".join(lines).encode("cp949"))
    return path


def test_the_dry_run_shows_the_corpus_dataset_and_an_unscored_corpus_is_refused(home: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("카피,제품,연령\n" + "\n".join(f"카피 {i},상품,20대" for i in range(30)), encoding="utf-8")
    assert run("corpus", "import", str(plain), env_home=home).returncode == 0
    refused = run("retrain", "--from-corpus", "--json", env_home=home)
    outcome = json.loads(refused.stdout)
    assert outcome["status"] == "skipped" and "0 training pairs (need 10)" in outcome["message"]
    assert "30 copies in the corpus, but none has a score" in outcome["message"]  # not "import more"
    assert "plain.csv, which has no score column (its columns: 카피, 제품, 연령)" in outcome["message"]

    assert run("corpus", "import", str(_scored_archive(tmp_path / "scored.csv")), env_home=home).returncode == 0
    dry = json.loads(run("retrain", "--from-corpus", "--dry-run", "--json", env_home=home).stdout)
    assert dry["status"] == "dry-run" and dry["dataset"]["source"] == "corpus"
    counts = dry["dataset"]["counts"]
    assert counts["pairs"] >= 10 and counts["heldout_pair_requests"] >= 1 and counts["corpus_ranked"] == 120


@pytest.mark.slow
def test_a_scored_archive_trains_an_adapter_gated_on_held_out_pairs_without_a_trial(
    home_with_starter: Path, tmp_path: Path
) -> None:
    home = home_with_starter
    assert run("corpus", "import", str(_scored_archive(tmp_path / "archive.csv", 20)), env_home=home).returncode == 0
    (home / "train_config.json").write_text(json.dumps({"epochs": 1, "min_steps": 2}), encoding="utf-8")
    result = run("retrain", "--from-corpus", "--json", env_home=home, extra_env={"COPYBOT_RERANK": "off"})
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout)  # JSON alone on stdout
    assert outcome["status"] in ("promoted", "kept") and outcome["version"] == "v0001"
    assert outcome["dataset"]["source"] == "corpus" and outcome["dataset"]["counts"]["pairs"] >= 10
    preference = next(r for r in outcome["reasons"] if r.split(": ", 1)[1].startswith("preference"))
    assert "held-out pairs from" in preference  # counted by held-out brief, as requests are for feedback
    store = Store.open(home / "copybot.db")
    assert store.trials() == []  # real outcomes decide: no live trial on emoji
    [training] = store.db.execute("select trigger, status from training_runs").fetchall()
    assert training == ("corpus", "succeeded")
    versions = {v["version"]: v["status"] for v in store.model_versions()}
    assert versions == {"v0001": "active" if outcome["status"] == "promoted" else "rejected"}
