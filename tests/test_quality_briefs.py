"""The quality benchmark's briefs: unseen products, every age group and channel; what counts as naming them."""

from __future__ import annotations

from benchmarks.quality import AGES, CHANNELS, briefs, named, states_offer
from model.starter.corpus import load_corpus
from model.writing.brief import Brief
from model.writing.facts import facts


def test_forty_briefs_over_every_age_and_channel_with_products_the_corpus_never_names() -> None:
    chosen = briefs()
    assert len(chosen) == 40
    assert {b["age"] for b in chosen} == set(AGES) and {b["channel"] for b in chosen} == set(CHANNELS)
    corpus_products = {r["product"] for r in load_corpus()}
    assert not {b["product"] for b in chosen} & corpus_products
    for b in chosen:  # each is a valid brief
        Brief.create(product=b["product"], event=b["event"], age=b["age"], channel=b["channel"], n=5, notes=b["notes"])
    offers = [b["notes"] for b in chosen if b["notes"]]
    assert len(offers) >= 20 and all(facts(offer) for offer in offers)  # at least half give an offer, with facts


def test_a_copy_states_the_offer_when_it_states_one_of_its_facts() -> None:
    assert states_offer("린넨 원피스 20% 할인해요", "20% 할인")
    assert states_offer("무료배송으로 만나요", "무료배송, 11월 30일까지")
    assert not states_offer("린넨 원피스 10% 할인해요", "20% 할인")
    assert not states_offer("시원한 린넨 원피스", "20% 할인")


def test_a_product_is_named_by_itself_or_its_head_noun() -> None:
    assert named("알파카머플러로 따뜻하게", "알파카 머플러")
    assert named("부드러운 머플러 하나면 충분해요", "알파카 머플러")
    assert not named("따뜻한 겨울 준비하세요", "알파카 머플러")
