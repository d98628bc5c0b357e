"""`copybot simulate`: raters, their checks, and a real (small) round on the starter model through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli.learning import scratch_home
from bot.learning.raters import (
    SUITE,
    casual_for_young,
    concrete_discount,
    emoji_for_young,
    long_copy,
    noisy_family,
    premium,
    react,
    seasonal,
    short_copy,
)
from bot.learning.simulate import (
    RoundResult,
    SimulationConfig,
    SimulationError,
    brief_pool,
    gain_text,
    load_rater,
    measure_served,
    rate,
)
from storage import Store
from tests.cli import run


def test_the_example_raters_like_what_they_say() -> None:
    young = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "20대", "channel": "sns"}
    assert emoji_for_young(young, ["시원하게 입어요 🌊", "시원하게 입어요", "✨ 새로 나왔어"]) == ["trophy", "-1", "+1"]
    assert emoji_for_young({**young, "age_group": "50대"}, ["좋습니다 🌊"]) == [None]
    texts = ["최대 30% 할인", "5,000원 쿠폰 증정", "1+1 행사", "3개월 무이자", "100% 만족", "좋은 가격", "2만 원 할인"]
    assert concrete_discount(young, texts) == ["trophy", "+1", "+1", "+1", "-1", "-1", "+1"]
    assert react([False, False]) == ["-1", "-1"]


def test_rater_specs_and_answers_are_checked() -> None:
    assert load_rater("bot.learning.raters:concrete_discount") is concrete_discount
    assert load_rater("bot.raters:concrete_discount") is concrete_discount  # the spelling before the move
    for spec, message in [
        ("bot.learning.raters", "is not 'module:function'"),
        ("no_such_module_xyz:rate", "cannot import rater module 'no_such_module_xyz'"),
        ("bot.learning.raters:nothing", "has no function 'nothing'"),
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


def test_every_evaluation_brief_is_written_with_each_fixed_seed_as_served(starter_dir: Path, store: Store) -> None:
    from model.writing.engine import LocalEngine
    from model.writing.writer import CopyWriter

    seen: list[tuple[str, tuple[str, ...]]] = []

    def recording_rater(brief: dict[str, str], candidates: list[str]) -> list[str | None]:
        seen.append((brief["product"], tuple(candidates)))
        return ["+1" if "%" in c else None for c in candidates]

    writer = CopyWriter(LocalEngine(starter_dir, version="starter"))
    briefs = [{"product": p, "event": "세일", "age_group": "20대", "channel": "sns"} for p in ("셔츠", "향수")]
    found = measure_served(store, writer, recording_rater, briefs, seeds=2)
    assert [product for product, _ in seen] == ["셔츠", "향수", "셔츠", "향수"]
    assert seen[0][1] != seen[2][1]  # a second seed is a second sample of the same brief
    share = sum("%" in c for _, texts in seen for c in texts) / sum(len(t) for _, t in seen)
    assert found.liked_share == round(share, 4) and found.by_version == {"starter": found.liked_share}
    assert 0 < found.distinct_2 <= 1
    assert measure_served(store, writer, recording_rater, briefs, seeds=2) == found  # fixed seeds: the same
    # with no reward in force, reranking off writes exactly what is served
    assert measure_served(store, writer, recording_rater, briefs, seeds=2, rerank=False) == found
    assert store.counts()["requests"] == 0  # measuring stores nothing
    assert SimulationConfig().eval_seeds == 3
    with pytest.raises(SimulationError, match="eval seeds"):
        SimulationConfig(eval_seeds=0)


def test_the_suite_has_every_kind_of_taste_and_each_rater_loads() -> None:
    assert len(SUITE) >= 8
    assert {"surface token", "length", "word family", "numbers", "register choice", "rare (under 5 %)", "noisy",
            "drifting", "no taste"} <= set(SUITE)  # fmt: skip
    for spec in SUITE.values():
        rater = load_rater(spec)
        assert callable(rater) and len(rate(rater, YOUNG, ["여름엔 시원한 린넨이야", "가족과 함께 해요"])) == 2


YOUNG = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "20대", "channel": "sns"}


def test_the_suite_raters_like_what_they_say() -> None:
    assert short_copy(YOUNG, ["짧게 입어요", "여름 린넨 셔츠를 가볍고 시원하게 입어 보세요, 지금 만나요"]) == [
        "trophy",
        "-1",
    ]
    assert long_copy(YOUNG, ["짧아요", "가" * 45]) == ["-1", "trophy"]
    assert seasonal(YOUNG, ["시원한 여름 셔츠", "셔츠 특가"]) == ["trophy", "-1"]
    assert premium(YOUNG, ["장인이 만든 셔츠", "특별한 셔츠", "엄선한 원단"]) == ["trophy", "-1", "+1"]
    assert casual_for_young(YOUNG, ["이거 입어봐", "입어 보세요"]) == ["trophy", "-1"]
    assert casual_for_young({**YOUNG, "age_group": "40대"}, ["이거 입어봐"]) == [None]


def test_the_noisy_rater_follows_its_rule_seven_times_in_ten_and_repeats_itself() -> None:
    texts = [f"가족과 함께 {i}번째 여름" for i in range(300)] + [f"셔츠 {i}번" for i in range(300)]
    first = noisy_family(YOUNG, texts)
    assert first == noisy_family(YOUNG, texts)  # the same brief and copy draw the same way, in any process
    liked = [r in ("+1", "trophy") for r in first]
    follows = sum(liked[:300]) + sum(not x for x in liked[300:])
    assert 0.8 < follows / 600 < 0.9  # 70 % by the rule + half of the other 30 % by chance = 85 %


def test_the_drifting_rater_changes_taste_after_its_round_and_no_taste_is_random() -> None:
    drifting = load_rater("bot.learning.raters:drifting_length")
    texts = ["짧아요", "가" * 50]
    drifting.start_round(2)  # type: ignore[attr-defined]
    assert drifting(YOUNG, texts) == ["trophy", "-1"]
    drifting.start_round(3)  # type: ignore[attr-defined]
    assert drifting(YOUNG, texts) == ["-1", "trophy"]
    random_rater = load_rater("bot.learning.raters:no_taste")
    reactions = [r for _ in range(200) for r in random_rater(YOUNG, texts)]
    assert 0.2 < reactions.count("+1") / 400 < 0.3 and 0.2 < reactions.count(None) / 400 < 0.3
    assert load_rater("bot.learning.raters:no_taste") is not random_rater  # a fresh stream for every simulation
    fresh = load_rater("bot.learning.raters:no_taste")
    assert [r for _ in range(200) for r in fresh(YOUNG, texts)] == reactions  # seeded: a simulation repeats
    # the simulation's seed seeds it: two seeds of the no-taste suite are two independent streams of noise
    seven, eight = load_rater("bot.learning.raters:no_taste"), load_rater("bot.learning.raters:no_taste")
    seven.start_simulation(7)  # type: ignore[attr-defined]
    eight.start_simulation(8)  # type: ignore[attr-defined]
    streams = [[r for _ in range(50) for r in rater(YOUNG, texts)] for rater in (seven, eight)]
    assert streams[0] != streams[1]
    again = load_rater("bot.learning.raters:no_taste")
    again.start_simulation(7)  # type: ignore[attr-defined]
    assert [r for _ in range(50) for r in again(YOUNG, texts)] == streams[0]


@pytest.mark.slow
def test_rounds_go_through_the_bots_store_paths_and_a_live_trial_decides(
    home_with_starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_home = tmp_path / "sim"
    for name, value in (("MIN_REQUESTS", "2"), ("LOOK_EVERY", "2"), ("MAX_REQUESTS", "4")):  # a trial fits a round
        monkeypatch.setenv(f"COPYBOT_TRIAL_{name}", value)
    result = run(
        "simulate",
        "--rounds",
        "2",
        "--requests-per-round",
        "6",
        "--eval-briefs",
        "2",
        "--eval-seeds",
        "2",
        "--json",
        "--rater",
        "bot.learning.raters:concrete_discount",
        "--home",
        str(sim_home),
        env_home=home_with_starter,
        extra_env={k: v for k, v in os.environ.items() if "TRIAL" in k},
    )
    assert result.returncode == 0, result.stderr
    rounds = json.loads(result.stdout)["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert all(0 <= r["liked_share"] <= 1 and 0 < r["distinct_2"] <= 1 for r in rounds)
    assert rounds[0]["retrain"] is None and rounds[1]["retrain"]["status"] == "trial"
    assert len(rounds[1]["retrain"]["reasons"]) == 8
    # after round 1 the challenger writes part of every copy the bot serves, the measurement's included
    assert rounds[1]["model_version"] == "starter" and set(rounds[1]["by_version"]) == {"starter", "v0001"}
    assert rounds[1]["trial"]["challenger"] == "v0001" and rounds[1]["decided"] == []
    # round 2's reactions on the mixed candidates decide it, by the stated rule
    [decided] = rounds[2]["decided"]
    assert decided["challenger"] == "v0001" and decided["outcome"] in ("promote", "retire")
    assert decided["rated"] in (2, 4) and decided["reason"]
    assert rounds[2]["model_version"] == ("v0001" if decided["outcome"] == "promote" else "starter")

    store = Store.open(sim_home / "copybot.db")
    requests = store.db.execute("select source, user_id, status from requests").fetchall()
    assert len(requests) == 12 and set(requests) == {("simulate", "simulator", "done")}
    trial = store.trials()[-1]  # the first; round 2's retrain may have put a second challenger on trial
    assert trial["challenger_version"] == "v0001"
    assert trial["status"] == {"promote": "promoted", "retire": "retired"}[decided["outcome"]]
    # round 2's requests were part of the trial until it decided, and of none after (the discount rater rates all)
    trial_ids = [r[0] for r in store.db.execute("select trial_id from requests where id > 6 order by id")]
    assert trial_ids == [trial["id"]] * decided["rated"] + [None] * (6 - decided["rated"])
    events = store.db.execute("select user_id, action, signal from feedback_events").fetchall()
    assert len(events) == store.counts()["candidates"]  # the discount rater reacts to every candidate
    assert {e[2] for e in events} <= {"up", "down", "win"} and {e[:2] for e in events} == {("simulator", "added")}
    runs = store.db.execute("select trigger, status from training_runs").fetchall()
    assert runs == [("simulate", "succeeded"), ("simulate", "succeeded")]
    main = Store.open(home_with_starter / "copybot.db")  # the team's own store is never touched
    assert main.counts()["requests"] == 0 and main.counts()["training_runs"] == 0

    again = run(
        "simulate",
        "--rater",
        "bot.learning.raters:concrete_discount",
        "--home",
        str(sim_home),
        env_home=home_with_starter,
    )
    assert again.returncode == 2 and "is not empty" in again.stderr
    bad = run("simulate", "--rater", "bot.learning.raters", env_home=home_with_starter)
    assert bad.returncode == 2 and "is not 'module:function'" in bad.stderr

    # without --home, each run gets its own new folder, named for the time and the rater
    measured = run("simulate", "--rounds", "0", "--eval-briefs", "1", "--eval-seeds", "1", "--json",
                   "--rater", "bot.learning.raters:emoji_for_young", env_home=home_with_starter)  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    [folder] = (home_with_starter / "simulations").iterdir()
    assert folder.name.startswith("sim-") and "-emoji_for_young-" in folder.name
    assert json.loads(measured.stdout)["home"] == str(folder)


def test_simulations_of_one_rater_started_in_the_same_second_get_their_own_homes(tmp_path: Path) -> None:
    # seeds of one rater side by side (the learning benchmark's no-taste runs) once shared a home and failed
    first, second = (
        scratch_home(tmp_path, "bot.learning.raters:no_taste"),
        scratch_home(tmp_path, "bot.learning.raters:no_taste"),
    )
    assert first != second and first.parent == second.parent == tmp_path / "simulations"
    assert first.is_dir() and not any(first.iterdir()) and "-no_taste-" in first.name


def test_a_simulation_on_a_fetched_base_starts_from_the_teams_active_adapter(home: Path, tmp_path: Path) -> None:
    from bot.generation import base_model_path
    from bot.learning.simulate import simulation_settings
    from bot.settings import Settings
    from model.fetch import GEMMA_3_270M, MARKER
    from model.training.registry import SCORES_DIR

    folder = home / "models" / GEMMA_3_270M.name
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(json.dumps({"sha256": GEMMA_3_270M.sha256}))
    adapter = home / "adapters" / "v0002"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    kept = home / "adapters" / SCORES_DIR
    kept.mkdir()
    (kept / "v0002.json").write_text('{"kept": "scores"}')
    main = Store.open(home / "copybot.db")
    main.add_model_version(version="v0002", base_model=GEMMA_3_270M.name, adapter_path=str(adapter))
    main.promote_model_version("v0002")
    settings = Settings.from_env({"COPYBOT_HOME": str(home), "COPYBOT_BASE_MODEL": GEMMA_3_270M.name})

    sim = simulation_settings(settings, tmp_path / "sim")
    linked = sim.home / "models" / GEMMA_3_270M.name
    assert linked.is_symlink() and linked.resolve() == folder.resolve()
    assert base_model_path(sim) == str(linked)  # no second fetch
    active = Store.open(sim.db_path).active_model_version()
    assert active is not None and active["version"] == "v0002"
    assert Path(active["adapter_path"]).parent == sim.home / "adapters"  # a copy: the simulation never touches it
    assert (Path(active["adapter_path"]) / "adapter_config.json").is_file()
    # the gate's kept scores come along (each is checked against its model's files before use)
    assert (sim.home / "adapters" / SCORES_DIR / "v0002.json").read_text() == '{"kept": "scores"}'


def test_a_gain_is_reported_as_served_and_with_reranking_off_and_the_rerankers_alone_is_labelled() -> None:
    def round_(served: float, alone: float | None) -> RoundResult:
        return RoundResult(0, served, 0.8, "starter", model_liked_share=alone)

    assert gain_text(round_(0.10, None), round_(0.30, 0.25)) == "+20.0 points as served, +15.0 with reranking off"
    assert gain_text(round_(0.10, None), round_(0.30, 0.11)) == (
        "+20.0 points as served, +1.0 with reranking off (from reranking alone)"
    )
    assert gain_text(round_(0.10, None), round_(0.20, None)) == "+10.0 points"  # the bot does not rerank
