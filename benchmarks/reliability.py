"""The fault suite (issue 40): inputs and faults thrown at the bot in HTTP mode, the importers and the model server,
each checked for what was lost, what wedged and whether the refusal was clear.

Run: python -m benchmarks.reliability. Everything runs on loopback: the real Bolt app behind copybot's HTTP
runner, the project's fake Slack Web API (with its outage mode), a real SQLite file (locked by a second
connection for the database cases), and `copybot model-server` over the starter model for the prompt limits.
Targets: 0 items lost and 0 wedged slots over all cases; every refusal clear (no 5xx, no traceback); the 1 MB
prompt answered 400 in under a second while a normal request completes; a 5 MB import line refused in under 5 s.

An item is *lost* when Slack got its ack (or a file row was read) and nothing of it is in the database or the
spill file afterwards; a slot is *wedged* when the generation pool holds it with nothing running.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.held import HeldWrites
from bot.settings import Settings
from bot.slack.app import create_app, web_client
from bot.slack.copy_requests import BotDeps
from bot.slack.pool import GenerationPool
from bot.slack.serve import HttpRunner
from model.writing.writer import CopyWriter
from storage import Store
from tests.fakes import signing
from tests.fakes.backends import POLITE, ScriptedBackend
from tests.fakes.db_lock import locked
from tests.fakes.slack_api import FakeSlack

WORKERS, QUEUE = 1, 4  # a small pool, so that a leaked slot shows at once


@dataclass
class Case:
    """One group of inputs: how many were tried, which failed (a 5xx, a traceback, a wrong outcome), which were
    lost, and the slots left wedged."""

    name: str
    tried: int = 0
    failures: list[str] = field(default_factory=list)
    lost: int = 0
    wedged: int = 0
    seconds: float = 0.0
    note: str = ""

    def check(self, ok: bool, what: str) -> None:
        self.tried += 1
        if not ok:
            self.failures.append(what)


@dataclass
class Bot:
    """The real app behind the HTTP runner, its store and the fake Slack it talks to."""

    deps: BotDeps
    runner: HttpRunner
    fake: FakeSlack
    triggers: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))

    def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.runner.port}/slack/events",
            data=body.encode(),
            headers=signing.headers(body, content_type) if headers is None else headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def command(self, text: str, trigger: str = "") -> tuple[int, str]:
        body = signing.command_body(
            text, response_url=self.fake.response_url(), trigger=trigger or f"T.{next(self.triggers)}"
        )
        return self.post(body, "application/x-www-form-urlencoded")

    def interact(self, payload: dict[str, Any]) -> tuple[int, str]:
        payload = {"trigger_id": f"T.i.{next(self.triggers)}", **payload}
        return self.post(signing.interaction_body(payload), "application/x-www-form-urlencoded")

    def event(self, event: dict[str, Any], event_id: str) -> tuple[int, str]:
        return self.post(signing.event_body(event, event_id=event_id), "application/json")

    def settle(self, timeout: float = 60) -> None:
        """Wait until every request taken in is stored, shown and written (or failed)."""
        time.sleep(0.3)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            self.deps.pool.depth() or self.deps.store.requests_with_status("pending", "running")
        ):
            time.sleep(0.05)
        time.sleep(0.3)

    def free_slots(self) -> int:
        """Slots that can be reserved now (all of them, when nothing runs)."""
        taken = 0
        while self.deps.pool.reserve():
            taken += 1
        for _ in range(taken):
            self.deps.pool.release()
        return taken


def start_bot(root: Path, fake: FakeSlack, *, busy_timeout_s: float = 30, hold_s: str = "300") -> Bot:
    settings = Settings.from_env(
        {
            "COPYBOT_HOME": str(root),
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": signing.SECRET,
            "SLACK_API_URL": fake.url,
            "COPYBOT_HOLD_SECONDS": hold_s,
        }
    )
    deps = BotDeps(
        settings,
        Store.open(settings.db_path, busy_timeout_s=busy_timeout_s),
        CopyWriter(ScriptedBackend(fallback=POLITE[:3])),
        pool=GenerationPool(WORKERS, QUEUE),
    )
    runner = HttpRunner(create_app(deps, client=web_client(settings), http=True), "127.0.0.1", 0)
    runner.start()
    return Bot(deps, runner, fake)


def stop_bot(bot: Bot) -> None:
    bot.runner.stop()
    bot.deps.intake.shutdown(wait=True)
    bot.deps.pool.shutdown(timeout=10)
    if bot.deps.notices is not None:
        bot.deps.notices.close()
    if bot.deps.held is not None:
        bot.deps.held.close()


def _reaction(ts: str, name: str = "+1") -> dict[str, Any]:
    return {
        "type": "reaction_added",
        "user": "U200",
        "reaction": name,
        "item_user": "UBOT",
        "event_ts": f"{time.time():.6f}",
        "item": {"type": "message", "channel": "C100", "ts": ts},
    }


def _press(value: str, ts: str = "", action_ts: str = "1700000300.1") -> dict[str, Any]:
    """A 📣 사용함 button press on the candidate `value` names (its message at `ts`)."""
    return {
        "type": "block_actions",
        "user": {"id": "U200", "team_id": "T0001"},
        "team": {"id": "T0001"},
        "api_app_id": "A1",
        "container": {"type": "message"},
        "channel": {"id": "C100"},
        "message": {"ts": ts},
        "actions": [
            {"action_id": "mark_used", "block_id": "b", "value": value, "type": "button", "action_ts": action_ts}
        ],
    }


def _candidates(bot: Bot) -> list[dict[str, Any]]:
    done = bot.deps.store.requests_with_status("done")
    return bot.deps.store.candidates_for(done[-1]["id"]) if done else []


def outage(root: Path, fake: FakeSlack) -> Case:
    """Slack unreachable for 3x the pool's capacity of `/copy`s, then back: each request kept as failed, each user
    told once Slack is back, and the next `/copy` served."""
    case = Case("Slack outage, then recovery")
    bot = start_bot(root, fake)
    try:
        fake.unreachable = True
        capacity, waves = WORKERS + QUEUE, 3
        for wave in range(waves):  # each wave fills the pool; a slot kept by the wave before would refuse this one
            with ThreadPoolExecutor(capacity) as pool:
                texts = [f"셔츠 {wave}-{i} / 세일 / 20대" for i in range(capacity)]
                replies = list(pool.map(bot.command, texts))
            for status, body in replies:
                case.check(status == 200 and body == "", f"/copy during the outage answered {status} {body[:60]}")
            bot.settle()
        count = capacity * waves
        failed = bot.deps.store.requests_with_status("failed")
        case.lost += count - len(failed)
        fake.unreachable = False
        deadline = time.monotonic() + 60
        while len(fake.of("response_url")) < len(failed) and time.monotonic() < deadline:
            time.sleep(0.2)
        case.check(len(fake.of("response_url")) >= len(failed), "a user was not told after the outage")
        case.wedged = (WORKERS + QUEUE) - bot.free_slots()
        case.note = f"{count} requests during the outage, {len(fake.of('response_url'))} users told after it"
    finally:
        stop_bot(bot)
    bot = start_bot(root / "after", fake)  # the same run, a fresh intake: the next /copy is served
    try:
        status, _ = bot.command("린넨 셔츠 / 여름 세일 / 20대")
        bot.settle()
        case.check(status == 200 and len(bot.deps.store.requests_with_status("done")) == 1, "next /copy not served")
    finally:
        stop_bot(bot)
    return case


def database_lock(root: Path, fake: FakeSlack) -> Case:
    """A write lock held past the busy timeout and past the hold bound: a reaction, an edit, a 📣 mark and a
    `/copy` go to the spill file, and the next start replays each once."""
    case = Case("database locked past the busy timeout")
    bot = start_bot(root, fake, busy_timeout_s=0.3, hold_s="2")
    spill = bot.deps.settings.spill_path
    try:
        bot.command("린넨 셔츠 / 여름 세일 / 30대")
        bot.settle()
        cands = _candidates(bot)
        with locked(bot.deps.settings.db_path):
            answers = [
                bot.event(_reaction(cands[0]["slack_ts"]), "EvLock1"),
                bot.interact(
                    {
                        "type": "view_submission",
                        "user": {"id": "U200", "team_id": "T0001"},
                        "team": {"id": "T0001"},
                        "api_app_id": "A1",
                        "view": {
                            "id": "V1",
                            "type": "modal",
                            "callback_id": "copy_edit",
                            "private_metadata": str(cands[1]["id"]),
                            "state": {"values": {"text": {"value": {"value": "여름엔 역시 린넨"}}}},
                        },
                    }
                ),
                bot.interact(_press(str(cands[2]["id"]), cands[2]["slack_ts"])),
                bot.command("셔츠 / 세일 / 20대"),
            ]
            for status, _ in answers:
                case.check(status == 200, f"answered {status} while the database was locked")
            deadline = time.monotonic() + 30
            while (
                not spill.exists() or len(spill.read_text("utf-8").splitlines()) < 4
            ) and time.monotonic() < deadline:
                time.sleep(0.1)
        spilled = len(spill.read_text("utf-8").splitlines()) if spill.exists() else 0
    finally:
        stop_bot(bot)
    store = Store.open(root / "copybot.db")
    applied, before = HeldWrites(store, spill, hold_s=2).replay()  # the next start
    again = HeldWrites(store, spill, hold_s=2).replay()
    found = min(store.counts()["feedback_events"], 2) + min(store.counts()["edits"], 1)  # the reaction and mark; edit
    found += min(len([r for r in store.requests_with_status("failed") if "busy" in r["error"]]), 1)  # the /copy
    case.tried += 4
    case.lost = 4 - found
    case.check(applied == 4 and before == 0 and again == (0, 0), f"replayed {applied}+{before}, then {again}")
    case.note = f"{spilled} writes spilled, {applied} replayed at the next start, 0 twice"
    return case


def replays(root: Path, fake: FakeSlack) -> Case:
    """The same signed request sent twice within its 5 minutes: a `/copy`, a reaction, a 📣 press."""
    case = Case("replayed signed requests")
    bot = start_bot(root, fake)
    try:
        bot.command("린넨 셔츠 / 여름 세일 / 30대", trigger="T.same")
        bot.command("린넨 셔츠 / 여름 세일 / 30대", trigger="T.same")
        bot.settle()
        case.check(bot.deps.store.counts()["requests"] == 1, "a replayed /copy ran twice")
        cands = _candidates(bot)
        body = signing.event_body(_reaction(cands[0]["slack_ts"]), event_id="EvTwice")
        for _ in range(2):
            bot.post(body, "application/json")
        press = {**_press(str(cands[1]["id"]), cands[1]["slack_ts"], "1700000400.1"), "trigger_id": "T.press"}
        for _ in range(2):
            bot.post(signing.interaction_body(press), "application/x-www-form-urlencoded")
        time.sleep(0.5)
        case.check(bot.deps.store.counts()["feedback_events"] == 2, "a replayed event or press counted twice")
        case.wedged = (WORKERS + QUEUE) - bot.free_slots()
    finally:
        stop_bot(bot)
    return case


def hostile_payloads(root: Path, fake: FakeSlack) -> Case:
    """Bad input on every request path: each answered in words (an ephemeral, the form's errors), never a 5xx, and
    nothing misread into the store."""
    case = Case("hostile Slack input")
    bot = start_bot(root, fake)
    view = {"id": "V1", "type": "modal", "callback_id": "copy_brief", "private_metadata": "C100"}
    user = {"id": "U200", "team_id": "T0001"}
    try:
        commands = [
            "제품: 린넨 셔츠, 혜택: 20% 할인, 연령: 20대",
            " / 여름 세일 / 20대",
            "\u200b\u202e / 세일 / 20대",
            "셔츠 / 세일 / 9살",
            "x" * 5000,
            "제품: 셔츠, 제품: 바지, 연령: 20대",
            "\x00",
            "/ / / /",
        ]
        for text in commands:
            status, body = bot.command(text)
            case.check(status == 200 and "ephemeral" in body, f"/copy {text[:20]!r} answered {status}")
        forms = [
            {**view, "state": {"values": {}}},
            {k: v for k, v in view.items()},
            {
                **view,
                "private_metadata": "",
                "state": {
                    "values": {
                        "product": {"value": {"value": "셔츠"}},
                        "age": {"value": {"selected_option": {"value": "20대"}}},
                    }
                },
            },
            {
                **view,
                "callback_id": "copy_edit",
                "private_metadata": "x",
                "state": {"values": {"text": {"value": {"value": "고친 카피"}}}},
            },
        ]
        for form in forms:
            status, body = bot.interact(
                {"type": "view_submission", "user": user, "team": {"id": "T0001"}, "api_app_id": "A1", "view": form}
            )
            case.check(status == 200 and "errors" in body, f"form {form.get('callback_id')} answered {status}")
        for value in ("not-a-number", "", "99999999"):
            status, _ = bot.interact(_press(value))
            case.check(status == 200, f"a 📣 press with value {value!r} answered {status}")
        unsigned = bot.post("command=/copy&text=x", "application/x-www-form-urlencoded", headers={})
        case.check(unsigned[0] == 401, f"an unsigned request answered {unsigned[0]}")
        time.sleep(0.5)
        case.check(bot.deps.store.counts()["requests"] == 0, "bad input was stored as a request")
        case.wedged = (WORKERS + QUEUE) - bot.free_slots()
        status, _ = bot.command("린넨\x00 셔\u200b츠\u202e / 여름 세일 / 30대")
        bot.settle()
        done = bot.deps.store.requests_with_status("done")
        case.check(status == 200 and [r["product"] for r in done] == ["린넨 셔츠"], "invisible characters kept")
    finally:
        stop_bot(bot)
    return case


def importers(root: Path) -> Case:
    """Files that once hung or crashed the importer: each refused in seconds, by line or by name, in words."""
    from bot.corpus_io import language_checks
    from storage.corpus import prepare_import
    from storage.corpus_files import CorpusFileError

    case = Case("hostile import files")
    store = Store.open(root / "import.db")
    checks = language_checks()
    files = {
        "5 MB JSONL line": ("huge.jsonl", json.dumps({"카피": "a" * 5_000_000, "연령": "20대"}) + "\n", "line 1"),
        "1.7M-character CSV field": (
            "field.csv",
            '카피,연령\n좋은 카피예요,20대\n"' + "가" * 1_700_000 + '",20대\n',
            "line 3",
        ),
        "duplicate header names": ("twice.csv", "카피,연령,카피\na,20대,b\n", "--map '카피=copy'"),
        "one column, an unquoted comma": ("one.csv", "카피\n여름엔 린넨이죠\n시원하게, 가볍게\n", "line 3"),
        "ambiguous header": ("both.csv", "카피,연령,상품 카피\na 카피,20대,b\n", "--map"),
    }
    for name, (file_name, text, expected) in files.items():
        path = root / file_name
        path.write_text(text, encoding="utf-8")
        started = time.monotonic()
        try:
            _, report = prepare_import(path, checks=checks, source="bench", existing=store.stored_corpus_rows)
            said = " ".join(f"line {n}: {r}" for n, r in report.bad)
        except (CorpusFileError, ValueError) as exc:
            said = str(exc)
        except Exception as exc:  # a traceback is a failure
            said = f"TRACEBACK {type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        case.check(
            expected in said and "TRACEBACK" not in said and seconds < 5, f"{name}: {said[:80]} ({seconds:.1f} s)"
        )
        if name.startswith("5 MB"):
            case.note = f"5 MB line refused in {seconds:.2f} s"
    return case


def model_server(root: Path) -> Case:
    """A 1 MB prompt beside a normal request on `copybot model-server` over the starter: 400 naming the limit in
    under a second, and the normal request answered."""
    import subprocess
    import sys

    case = Case("model server: a 1 MB prompt")
    port = _free_port()
    _link_starter(root)
    env = {"COPYBOT_HOME": str(root), "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "model-server", "--port", str(port), "--no-jobs"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not _wait_health(port, 600):
            case.check(False, "the model server did not start")
            return case
        base = f"http://127.0.0.1:{port}/v1/completions"
        normal = {"model": "starter", "prompt": "<제품>린넨 셔츠<카피>", "max_tokens": 16}
        with ThreadPoolExecutor(2) as pool:
            ok = pool.submit(_json_post, base, normal)
            time.sleep(0.05)
            started = time.monotonic()
            big_status, big_body = _json_post(base, {**normal, "prompt": "가" * 1_000_000})
            big_s = time.monotonic() - started
            ok_status, _ = ok.result()
        case.check(
            big_status == 400 and "max_prompt_tokens" in big_body and big_s < 1, f"1 MB: {big_status} in {big_s:.2f}s"
        )
        case.check(ok_status == 200, f"the normal request beside it answered {ok_status}")
        case.note = f"1 MB prompt refused in {big_s * 1000:.0f} ms"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            case.check(False, "the model server ignored SIGTERM for 30 s")
    return case


def _link_starter(root: Path) -> None:
    """The starter model already built for this machine (the default home's, or the test cache's), so that the
    case measures the server and not a 3-minute build; without one the server builds it."""
    from tests.conftest import STARTER_CACHE

    built = [Settings.from_env({}).starter_dir, *sorted(STARTER_CACHE.glob("*"))]
    found = next((p for p in built if (p / "config.json").is_file()), None)
    if found is not None:
        (root / "models").mkdir(parents=True, exist_ok=True)
        (root / "models" / "starter").symlink_to(found.resolve(), target_is_directory=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_health(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return True
        except OSError:
            time.sleep(1)
    return False


def _json_post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


CASES: list[tuple[str, Callable[[Path, FakeSlack], Case]]] = [
    ("outage", outage),
    ("lock", database_lock),
    ("replay", replays),
    ("hostile", hostile_payloads),
    ("import", lambda root, _: importers(root)),
    ("model_server", lambda root, _: model_server(root)),
]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="The fault suite; prints a Markdown table.")
    parser.add_argument("--only", nargs="*", choices=[name for name, _ in CASES], help="run only these cases")
    chosen = parser.parse_args().only or [name for name, _ in CASES]
    fake = FakeSlack().start()
    cases = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, run in CASES:
                if name not in chosen:
                    continue
                started = time.monotonic()
                case = run(Path(tmp) / name, fake)
                case.seconds = time.monotonic() - started
                cases.append(case)
                fake.calls.clear()
    finally:
        fake.stop()
    print("| case | inputs | failures | items lost | wedged slots | seconds | notes |")
    print("|---|---|---|---|---|---|---|")
    for c in cases:
        print(f"| {c.name} | {c.tried} | {len(c.failures)} | {c.lost} | {c.wedged} | {c.seconds:.1f} | {c.note} |")
    tried, failures = sum(c.tried for c in cases), [f for c in cases for f in c.failures]
    lost, wedged = sum(c.lost for c in cases), sum(c.wedged for c in cases)
    print(
        f"| **all** | {tried} | {len(failures)} | {lost} | {wedged} | {sum(c.seconds for c in cases):.1f} | "
        "target: 0 failures, 0 lost, 0 wedged |"
    )
    for failure in failures:
        print(f"\nfailure: {failure}")


if __name__ == "__main__":
    main()
