"""`copybot simulate`: raters, their checks, and a real (small) round on the starter model through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.raters import concrete_discount, emoji_for_young, react
from bot.simulate import SimulationConfig, SimulationError, brief_pool, liked_share, load_rater, rate
from storage import Store
from tests.bot.test_cli import run


def test_the_example_raters_like_what_they_say() -> None:
    young = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "20대", "channel": "sns"}
    assert emoji_for_young(young, ["시원하게 입어요 🌊", "시원하게 입어요", "✨ 새로 나왔어"]) == ["trophy", "-1", "+1"]
    assert emoji_for_young({**young, "age_group": "50대"}, ["좋습니다 🌊"]) == [None]
    texts = ["최대 30% 할인", "5,000원 쿠폰 증정", "1+1 행사", "3개월 무이자", "100% 만족", "좋은 가격", "2만 원 할인"]
    assert concrete_discount(young, texts) == ["trophy", "+1", "+1", "+1", "-1", "-1", "+1"]
    assert react([False, False]) == ["-1", "-1"]


def test_rater_specs_and_answers_are_checked() -> None:
    assert load_rater("bot.raters:concrete_discount") is concrete_discount
    for spec, message in [
        ("bot.raters", "is not 'module:function'"),
        ("no_such_module_xyz:rate", "cannot import rater module 'no_such_module_xyz'"),
        ("bot.raters:nothing", "has no function 'nothing'"),
    ]:
        with pytest.raises(SimulationError, match=message):
            load_rater(spec)
    with pytest.raises(SimulationError, match="returned 1 reactions for 2 candidates"):
        rate(lambda brief, texts: ["+1"], {}, ["a", "b"])
    with pytest.raises(SimulationError, match="returned 'heart'; use"):
        rate(lambda brief, texts: ["heart"], {}, ["a"])


def test_the_brief_pool_follows_the_raters_filter() -> None:
    rows = [
        {"product": "셔츠", "event": "세일", "age_group": age, "channel": channel}
        for age in ("10대", "20대", "50대") for channel in ("sns", "sms")
    ]  # fmt: skip
    pool = brief_pool(rows + rows, emoji_for_young)
    assert {(b["age_group"], b["channel"]) for b in pool} == {("10대", "sns"), ("20대", "sns")}
    assert len(brief_pool(rows, concrete_discount)) == 6  # no filter: every distinct brief
    with pytest.raises(SimulationError, match="no corpus brief passes"):
        brief_pool([r for r in rows if r["age_group"] == "50대"], emoji_for_young)


def test_every_evaluation_brief_is_written_with_each_fixed_seed(starter_dir: Path) -> None:
    from model.engine import LocalEngine
    from model.writer import CopyWriter

    seen: list[tuple[str, tuple[str, ...]]] = []

    def recording_rater(brief: dict[str, str], candidates: list[str]) -> list[str | None]:
        seen.append((brief["product"], tuple(candidates)))
        return ["+1" if "%" in c else None for c in candidates]

    writer = CopyWriter(LocalEngine(starter_dir, version="starter"))
    briefs = [{"product": p, "event": "세일", "age_group": "20대", "channel": "sns"} for p in ("셔츠", "향수")]
    share, distinct = liked_share(writer, recording_rater, briefs, seeds=2)
    assert [product for product, _ in seen] == ["셔츠", "향수", "셔츠", "향수"]
    assert seen[0][1] != seen[2][1]  # a second seed is a second sample of the same brief
    assert share == sum("%" in c for _, texts in seen for c in texts) / sum(len(t) for _, t in seen)
    assert 0 < distinct <= 1
    assert liked_share(writer, recording_rater, briefs, seeds=2) == (share, distinct)  # fixed seeds: the same
    assert SimulationConfig().eval_seeds == 3
    with pytest.raises(SimulationError, match="eval seeds"):
        SimulationConfig(eval_seeds=0)


@pytest.mark.slow
def test_a_round_goes_through_the_bots_store_paths_and_the_gate(home_with_starter: Path, tmp_path: Path) -> None:
    sim_home = tmp_path / "sim"
    result = run("simulate", "--rounds", "1", "--requests-per-round", "6", "--eval-briefs", "2", "--eval-seeds", "2", "--json",
                 "--rater", "bot.raters:concrete_discount", "--home", str(sim_home), env_home=home_with_starter)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rounds = json.loads(result.stdout)["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    assert all(0 <= r["liked_share"] <= 1 and 0 < r["distinct_2"] <= 1 for r in rounds)
    assert rounds[0]["retrain"] is None and rounds[1]["retrain"]["status"] in ("promoted", "kept")
    assert rounds[1]["model_version"] == ("v0001" if rounds[1]["retrain"]["status"] == "promoted" else "starter")
    assert len(rounds[1]["retrain"]["reasons"]) == 6

    store = Store.open(sim_home / "copybot.db")
    requests = store.db.execute("select source, user_id, status from requests").fetchall()
    assert len(requests) == 6 and set(requests) == {("simulate", "simulator", "done")}
    events = store.db.execute("select user_id, action, signal from feedback_events").fetchall()
    assert len(events) == store.counts()["candidates"]  # the discount rater reacts to every candidate
    assert {e[2] for e in events} <= {"up", "down", "win"} and {e[:2] for e in events} == {("simulator", "added")}
    [(trigger, status)] = store.db.execute("select trigger, status from training_runs").fetchall()
    assert (trigger, status) == ("simulate", "succeeded")
    main = Store.open(home_with_starter / "copybot.db")  # the team's own store is never touched
    assert main.counts()["requests"] == 0 and main.counts()["training_runs"] == 0

    again = run(
        "simulate", "--rater", "bot.raters:concrete_discount", "--home", str(sim_home), env_home=home_with_starter
    )
    assert again.returncode == 2 and "is not empty" in again.stderr
    bad = run("simulate", "--rater", "bot.raters", env_home=home_with_starter)
    assert bad.returncode == 2 and "is not 'module:function'" in bad.stderr

    # without --home, each run gets its own folder named for the time and the rater, so two raters started in the
    # same second (the learning benchmark runs them side by side) never share one
    measured = run("simulate", "--rounds", "0", "--eval-briefs", "1", "--eval-seeds", "1", "--json",
                   "--rater", "bot.raters:emoji_for_young", env_home=home_with_starter)  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    [folder] = (home_with_starter / "simulations").iterdir()
    assert folder.name.startswith("sim-") and folder.name.endswith("-emoji_for_young")
    assert json.loads(measured.stdout)["home"] == str(folder)
