"""Post-processing: normalising, channel limits (SMS in cp949 bytes), dedupe and the compliance screen."""

from __future__ import annotations

from model.writing.compliance import load_rules, screen
from model.writing.postprocess import dedupe, fit_channel, is_near_duplicate, length_flag, measure, normalize


def test_normalize_cleans_model_output() -> None:
    assert normalize('  "봄   세일\n시작"  ') == "봄 세일 시작"
    assert normalize("여름 세일 <제품> 린넨") == "여름 세일"
    assert normalize("깨진 \ufffd 글자") == ""
    assert normalize("\u1100\u1161 세일") == "가 세일"  # NFC: conjoining jamo become one syllable


def test_sms_is_counted_in_cp949_bytes_and_has_no_emoji() -> None:
    text = "여름 세일 시작! 지금 바로 만나보세요. 린넨 셔츠 전 품목 최대 50% 할인 혜택을 드려요 😀 꼭 오세요"
    fitted = fit_channel(text, "sms", allow_emoji=True)
    assert "😀" not in fitted
    assert measure(fitted, "sms") == len(fitted.encode("cp949")) <= 90
    assert fitted.endswith(("!", ".", "요"))
    assert length_flag(fitted, "sms") == []


def test_emoji_kept_only_where_allowed() -> None:
    assert fit_channel("세일 시작 🎉", "sns", allow_emoji=True) == "세일 시작 🎉"
    assert fit_channel("세일 시작 🎉", "sns", allow_emoji=False) == "세일 시작"
    assert fit_channel("세일 시작 🎉", "print", allow_emoji=True) == "세일 시작"


def test_unsplittable_long_copy_is_flagged_not_cut_mid_word() -> None:
    text = "가" * 50
    assert fit_channel(text, "banner", allow_emoji=True) == text
    assert length_flag(text, "banner") == ["too_long: 50 chars, banner allows 40"]


def test_dedupe_drops_empties_and_near_duplicates() -> None:
    texts = ["봄 세일 시작!", "봄 세일 시작", "", "여름 린넨 셔츠 입고", "여름 린넨 셔츠 입고!!"]
    assert dedupe(texts) == ["봄 세일 시작!", "여름 린넨 셔츠 입고"]
    assert dedupe(["새 카피"], keep=["새 카피."]) == []
    assert is_near_duplicate("가을 니트 전 품목 30% 할인해요", "가을 니트 전 품목 30% 할인해요~")
    assert not is_near_duplicate("가을 니트 할인", "겨울 패딩 입고")


def test_compliance_flags_with_reasons() -> None:
    rules = load_rules()
    flags = screen("국내 최초! 피부 재생 크림, 1위의 선택", rules)
    codes = sorted(f.split(":")[0] for f in flags)
    assert codes == ["absolute_claim", "absolute_claim", "medical_claim"]
    assert all("—" in f for f in flags)
    assert screen("촉촉한 수분 크림, 이번 주 20% 할인", rules) == []


def test_compliance_terms_are_configurable(tmp_path) -> None:
    custom = tmp_path / "terms.json"
    custom.write_text('{"rules": [{"code": "brand", "reason": "경쟁사 언급", "terms": ["타사"]}]}', "utf-8")
    assert screen("타사보다 저렴해요", load_rules(custom)) == ["brand: '타사' — 경쟁사 언급"]


def test_text_that_is_not_mostly_hangul_is_dropped() -> None:
    from model.writing.postprocess import hangul_share

    # a random model's multilingual output, and Latin text, are not Korean copy
    assert normalize("ترجمة переводы 翻訳 sale") == ""
    assert normalize("Summer linen shirt 20% off") == ""
    assert normalize("50% 🎉") == ""  # no letters at all
    # a Latin brand name beside Korean words is kept; exactly half Hangul is kept
    assert normalize("NIKE 에어맥스 신상 입고") == "NIKE 에어맥스 신상 입고"
    assert normalize("ab 가나") == "ab 가나"
    assert normalize("abc 가나") == ""
    assert hangul_share("ㅋㅋ 신상") == 1.0
    assert hangul_share("") == 0.0
