"""Copy quality side by side: the starter and a real base model (with its active adapter) on 40 unseen briefs.

Run: python -m benchmarks.quality [--models starter gemma-3-270m] [--samples 10]

The 40 briefs are fixed, cover every age group and channel, and name products that the starter corpus does not
(checked in tests/test_quality_briefs.py). Each model writes 5 candidates per brief as the bot does (the writer,
its register retries and filters; the active adapter of COPYBOT_HOME on that base, if any). Reported per model:
register match, product named (the product or its head noun), event named (the event or its head noun),
distinct-2 (median per brief), novelty (share of copies that copy 12+ characters from the corpus), compliance
flags, the lowest Hangul share among the copies, seconds per brief, the share of the 200 asked that were shown,
the share shown with no figure or benefit their brief did not give (grounded), the share of the copies of briefs
with an offer that state it (half the briefs give one, in their notes),
the share of every text written that was copy at all, and the share that broke each rule of model/writing/form.py
(not shown, written again); then sample copies for people to read.
Targets for gemma with its adapter (issue 15): register match >= 95 %, product named >= 70 %, at most 10 % copying,
no candidate under 50 % Hangul. A model that is not available gets a row saying why.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from model.writing.facts import UNGROUNDED, facts
from model.writing.form import FAULTS

AGES = ("10대", "20대", "30대", "40대", "50대", "60대+")
CHANNELS = ("sns", "sms", "push", "banner", "print")
BRIEFS = [  # (product, event): products that the starter corpus never names
    ("알파카 머플러", "겨울 정기 세일"), ("골전도 이어폰", "블랙프라이데이"), ("릴렉스 체어", "봄 캠핑 세일"),
    ("리넨 원피스", "여름 신상품 입고"), ("전기 그릴", "가정의 달 기획전"), ("양모 러그", "리빙 신상 입고"),
    ("아이 우비", "장마 시즌 기획전"), ("니트 베레모", "발렌타인데이"), ("한방 샴푸", "추석 선물전"),
    ("바이크 헬멧", "봄 아웃도어 세일"), ("도자기 머그", "크리스마스 선물전"), ("체지방 측정기", "새 학기 건강 기획전"),
    ("울 스카프", "어버이날 선물전"), ("키즈 킥보드", "어린이날 선물전"), ("아카시아 꿀", "설 선물전"),
    ("트렌치 코트", "가을 아우터 입고"), ("물걸레 청소기", "여름 가전 특가"), ("향초 세트", "연말 감사 선물전"),
    ("블루투스 스피커", "여름 휴가 준비전"), ("진주 귀걸이", "화이트데이"),
]  # fmt: skip


# the offers every other brief gives (in its notes until the brief has offer fields): one of each kind of fact
OFFERS = (
    "20% 할인",
    "1+1",
    "무료배송, 11월 30일까지",
    "정가 39,000원, 판매가 29,000원",
    "사은품 증정",
    "5만원 이상 구매 시 10% 할인",
    "12월 1일~12월 3일 30% 할인",
    "2+1",
    "포인트 5% 적립",
    "반값 할인",
)


def briefs() -> list[dict[str, str]]:
    """40 briefs: each product twice, the age groups and channels in turn; every other one gives an offer."""
    out = []
    for i in range(40):
        product, event = BRIEFS[i % len(BRIEFS)]
        notes = OFFERS[(i // 2) % len(OFFERS)] if i % 2 else ""
        out.append({"product": product, "event": event, "age": AGES[i % len(AGES)], "channel": CHANNELS[i % 5]})
        out[-1]["notes"] = notes
    return out


def states_offer(text: str, offer: str) -> bool:
    """The copy states at least one fact of the brief's offer (model/writing/facts.py)."""
    given = {(f.kind, f.value) for f in facts(offer)}
    return any((f.kind, f.value) in given for f in facts(text))


def head_noun(phrase: str) -> str:
    return phrase.split()[-1]


def named(text: str, phrase: str) -> bool:
    """The phrase, or its head noun, appears in the copy (spaces ignored)."""
    squeezed = text.replace(" ", "")
    return phrase.replace(" ", "") in squeezed or head_noun(phrase) in squeezed


def _writer(base: str) -> tuple[Any, str]:
    from bot.generation import make_writer
    from bot.settings import Settings
    from storage import Store

    settings = Settings.from_env({**os.environ, "COPYBOT_BASE_MODEL": base, "COPYBOT_RERANK": "off"})
    store = Store.open(settings.db_path)
    writer = make_writer(settings, store=store)
    active = store.active_model_version()
    return writer, active["version"] if active and active["base_model"] == settings.base_model else "none"


def measure(base: str) -> dict[str, Any]:
    from model.starter.corpus import load_corpus
    from model.training.evaluate import corpus_spans
    from model.writing.brief import Brief
    from model.writing.diversity import distinct_2
    from model.writing.postprocess import hangul_share

    writer, adapter = _writer(base)
    spans = corpus_spans([r["text"] for r in load_corpus()])
    copies: list[tuple[dict[str, str], Any]] = []
    distincts, seconds = [], []
    written, malformed = 0, []
    for i, b in enumerate(briefs()):
        fields = {"product": b["product"], "event": b["event"], "age": b["age"], "channel": b["channel"]}
        brief = Brief.create(**fields, n=5, notes=b["notes"])
        started = time.perf_counter()
        try:
            generation = writer.write(brief, seed=100 + i)
        except Exception:  # a brief with no usable copy counts as five failed copies
            generation = None
        candidates = generation.candidates if generation is not None else []
        if generation is not None:
            written += generation.generated
            malformed += generation.malformed
        seconds.append(time.perf_counter() - started)
        copies += [(b, c) for c in candidates]
        distincts.append(distinct_2([c.text for c in candidates]) if candidates else 0.0)
    asked = 40 * 5
    share = lambda hits: round(100 * hits / asked, 1)  # noqa: E731
    return {
        "model": base, "adapter": adapter, "copies": len(copies),
        "register match %": share(sum(c.register_ok for _, c in copies)),
        "product named %": share(sum(named(c.text, b["product"]) for b, c in copies)),
        "event named %": share(sum(named(c.text, b["event"]) for b, c in copies)),
        "distinct-2": round(statistics.median(distincts), 3),
        "copying %": share(sum(any(s in spans for s in _spans_of(c.text)) for _, c in copies)),
        "flagged %": share(sum(bool([f for f in c.flags if not f.startswith("register")]) for _, c in copies)),
        "lowest Hangul %": round(100 * min((hangul_share(c.text) for _, c in copies), default=0.0), 1),
        "s per brief": round(statistics.median(seconds), 2),
        "shown %": share(len(copies)),
        "grounded %": share(sum(not any(f.startswith(UNGROUNDED) for f in c.flags) for _, c in copies)),
        "offer stated %": _offer_stated(copies),
        "well-formed %": round(100 * (1 - len(malformed) / max(1, written)), 1),
        **{f"{rule} %": round(100 * sum(rule in m for m in malformed) / max(1, written), 1) for rule in FAULTS},
        "samples": [f"{b['product']} / {b['event']} / {b['age']} / {b['channel']}: {c.text}" for b, c in copies[::10]],
    }  # fmt: skip


def _offer_stated(copies: list[tuple[dict[str, str], Any]]) -> float:
    offered = [states_offer(c.text, b["notes"]) for b, c in copies if b["notes"]]
    return round(100 * statistics.fmean(offered), 1) if offered else 0.0


def _spans_of(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(len(text) - size + 1)]


COLUMNS = (
    "register match %",
    "product named %",
    "event named %",
    "distinct-2",
    "copying %",
    "flagged %",
    "lowest Hangul %",
    "s per brief",
    "shown %",
    "grounded %",
    "offer stated %",
    "well-formed %",
)
COLUMNS += tuple(f"{rule} %" for rule in FAULTS)


def main() -> None:
    from model.errors import ModelSideError

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["starter", "gemma-3-270m"])
    parser.add_argument("--samples", type=int, default=10, help="sample copies shown per model")
    args = parser.parse_args()
    print("| model (adapter) | " + " | ".join(COLUMNS) + " |\n" + "|---" * (len(COLUMNS) + 1) + "|")
    samples = []
    for base in args.models:
        try:
            row = measure(base)
        except ModelSideError as exc:
            print(f"| {base} | not available: {exc} |")
            continue
        print(f"| {row['model']} ({row['adapter']}) | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
        samples += [f"- {row['model']}: {s}" for s in row["samples"][: args.samples]]
    print("\n" + "\n".join(samples))


if __name__ == "__main__":
    main()
