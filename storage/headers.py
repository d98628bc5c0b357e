"""Which file column holds which field, from headers as people write them: the one rule for corpus and results files.

A header names a field when, after NFKC and lower-casing:

- its whole name, without a unit such as "(%)" and without spaces, '-' or '_', is one of the field's aliases
  (`카피`, `CTR(%)`, `event_name`): an **exact** match; or
- its **head word** names the field and no other word of it names another field: `타깃 연령`, `광고 카피`,
  `연령대(타깃)`, `상품명(국문)`, `매체명`. Korean and English noun compounds put the word that says what a thing
  is last (타깃 *연령* is an age, 카피 *ID* is an ID), so the head is the last word outside parentheses that is not
  a qualifier such as 명, 국문 or 광고. A word may be a compound of aliases and qualifiers written together
  (`매체명` = 매체 + 명, `타깃연령` = 타깃 + 연령). Digits are dropped (`카피1`).

A header whose words name two fields (`상품 카피`, `타깃 매체`) could mean either: it is refused by name, with the
`--map` that settles it. So are two columns that would be the same field with equal claim (two exact aliases of
equal rank, or two head-word matches). A header whose head is not an alias but whose other words name a field
(`타깃 성별`, `카피 길이`) is not used, and the report says which field its name mentions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

_UNIT = re.compile(r"[\(\[（][^()\[\]（）]{0,40}[\)\]）]|%")  # bounded: linear on any cell
_GROUP = re.compile(r"[\(\[（]([^()\[\]（）]{0,40})[\)\]）]")
_SPLIT = re.compile(r"[\W_\d]+")
# Words that qualify a column's name without changing what it holds: "name of", the language, "advertising",
# "target of", "main", "final". 대상 is here and not an age alias: 대상 상품 is a product, 대상 연령 an age.
QUALIFIERS = frozenset(
    (
        "명",
        "명칭",
        "이름",
        "국문",
        "영문",
        "한글",
        "한국어",
        "광고",
        "대상",
        "구분",
        "내용",
        "정보",
        "최종",
        "메인",
        "대표",
        "name",
        "ad",
        "main",
        "final",
        "kr",
        "ko",
        "kor",
        "en",
        "eng",
    )
)
NOT_USED = "none"
MAX_WORD = 40  # characters: longer "words" are data, not a header (the search below stays linear in a cell)
MAX_PIECE = 24  # characters: longer than any alias or qualifier
MAX_HEADER = (
    200  # characters: a header cell is a name, not a copy  # `--map COLUMN=none`: the column is deliberately not used
)


_REPEAT = re.compile(r"\s#\d+$")  # "카피 #3": a name the file repeats, marked with its column (corpus_files.py)


def header_key(column: str) -> str:
    """A header as aliases are matched whole: lower case, without a unit such as "(%)", spaces, '-' or '_', or the
    column number a repeated name carries."""
    column = _REPEAT.sub("", unicodedata.normalize("NFKC", column))
    return re.sub(r"[\s_\-]+", "", _UNIT.sub("", column).lower())


@dataclass(frozen=True)
class Vocabulary:
    """A file kind's fields: each with its aliases in order of preference (an earlier alias wins a tie between
    columns), the aliases that match only a whole header (too generic as a word: "id"), and the short names a
    person may write in `--map` (age for age_group)."""

    aliases: Mapping[str, tuple[str, ...]]
    whole_only: frozenset[str] = frozenset()
    short_names: Mapping[str, str] = field(default_factory=dict)  # short -> field

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.aliases)

    def field_named(self, name: str) -> str:
        """The field a `--map` value names (a field or its short name), or NOT_USED; ValueError otherwise."""
        key = name.strip().lower()
        if key in self.aliases or key == NOT_USED:
            return key
        if key in self.short_names:
            return self.short_names[key]
        names = ", ".join(sorted({*self.fields, *self.short_names}))
        raise ValueError(
            f"--map names an unknown field {name!r}; fields are {names} (or {NOT_USED} to leave a column out)"
        )

    def short(self, fld: str) -> str:
        """What a person writes in `--map` for a field: its short name where it has one."""
        return next((s for s, f in self.short_names.items() if f == fld), fld)

    def exact(self, column: str) -> tuple[str, int] | None:
        """(field, alias rank) when the whole header is an alias."""
        return self._tables[1].get(header_key(column))

    @cached_property
    def _tables(self) -> tuple[dict[str, str], dict[str, tuple[str, int]]]:
        """(word pieces -> field, whole-header key -> (field, rank)); fields earlier in the vocabulary keep a key."""
        pieces: dict[str, str] = {}
        whole: dict[str, tuple[str, int]] = {}
        for fld, aliases in self.aliases.items():
            for rank, alias in enumerate(aliases):
                key = header_key(alias)
                whole.setdefault(key, (fld, rank))
                if key not in self.whole_only and len(key) > 1 and _SPLIT.sub("", key) == key:
                    pieces.setdefault(key, fld)
        return pieces, whole

    def naming(self, column: str) -> Naming:
        """What the header's words say: the field its head word names, and every field any word names."""
        return _naming(self, column)


@dataclass(frozen=True)
class Naming:
    head: str | None  # the field the head word names
    head_rank: int  # the rank of that alias among its field's aliases
    named: frozenset[str]  # every field a word names, head included
    mentioned: frozenset[str]  # fields whose alias begins or ends a word that is not all aliases (상품코드)


def _segment(word: str, pieces: Mapping[str, str]) -> list[str | None] | None:
    """The word as a run of alias pieces (their fields) and qualifiers (None), or None when it is not one.
    Longest pieces first, so 연령대 is one piece and not 연령 + 대. A word longer than MAX_WORD is no header's:
    refused at once, so that a long cell read while the header is looked for costs nothing."""
    if not word:
        return []
    if len(word) > MAX_WORD:
        return None
    for end in range(min(len(word), MAX_PIECE), 0, -1):
        head = word[:end]
        if head in pieces or head in QUALIFIERS:
            rest = _segment(word[end:], pieces)
            if rest is not None:
                return [pieces.get(head), *rest]
    return None


def _words(text: str) -> list[str]:
    return [w for w in _SPLIT.split(text) if w]


def _naming(vocab: Vocabulary, column: str) -> Naming:
    pieces = vocab._tables[0]
    text = unicodedata.normalize("NFKC", column).lower()
    inner = [w for group in _GROUP.findall(text) for w in _words(group)]
    outer = _words(_GROUP.sub(" ", text).replace("%", " "))
    named: set[str] = set()
    head: str | None = None
    head_rank = 0
    head_found = False
    for word in reversed(outer or inner):
        parts = _segment(word, pieces)
        fields = [f for f in parts or [] if f]
        named.update(fields)
        if head_found or (parts is not None and not fields):  # a qualifier is never the head
            continue
        head_found = True
        if fields:
            head = fields[-1]
            head_rank = _rank(vocab, head, word)
    for word in inner if outer else []:
        named.update(f for f in _segment(word, pieces) or [] if f)
    mentioned = {
        f
        for w in outer + inner
        if _segment(w, pieces) is None
        for p, f in pieces.items()
        if w.startswith(p) or w.endswith(p)
    }
    return Naming(head, head_rank, frozenset(named), frozenset(mentioned - named))


def _rank(vocab: Vocabulary, fld: str, word: str) -> int:
    keys = [header_key(a) for a in vocab.aliases[fld]]
    return next((i for i, k in enumerate(keys) if word.endswith(k)), len(keys))


@dataclass
class Columns:
    """The outcome of matching a file's header: which column is which field, and why each other column is not
    used (its reason, and the field its name mentions, if any)."""

    mapping: dict[str, str]
    not_used: dict[str, str] = field(default_factory=dict)  # column -> reason
    mentions: dict[str, str] = field(default_factory=dict)  # column -> the field its name mentions


class HeaderError(ValueError):
    """A header the import cannot read without the user's word; the message names the `--map` that settles it."""


def _quote(column: str) -> str:
    return "'" + column.replace("'", "'\\''") + "'"


def map_hint(column: str, name: str) -> str:
    """The `--map` option that maps a column, quoted for a shell."""
    return f"--map {_quote(f'{column}={name}')}"


def match_columns(headers: list[str], vocab: Vocabulary, overrides: Mapping[str, str]) -> Columns:
    """Each header's field by the rules above, after the user's `--map` pairs; raises HeaderError for a header
    that names two fields or two columns with an equal claim to one field."""
    fixed: dict[str, str] = {}
    for column, name in overrides.items():
        if column not in headers:
            raise HeaderError(f"--map names column {column!r}, which the file does not have; its columns are {headers}")
        fixed[column] = vocab.field_named(name)
    claims: dict[str, list[tuple[tuple[int, int], str]]] = {}
    ambiguous: list[tuple[str, list[str]]] = []
    out = Columns(mapping={c: f for c, f in fixed.items() if f != NOT_USED})
    for column in headers:
        if column in fixed:
            if fixed[column] == NOT_USED:
                out.not_used[column] = "left out by --map"
            continue
        exact = vocab.exact(column)
        naming = vocab.naming(column)
        if exact is not None:
            claims.setdefault(exact[0], []).append(((0, exact[1]), column))
        elif naming.head is not None and naming.named == {naming.head}:
            claims.setdefault(naming.head, []).append(((1, naming.head_rank), column))
        elif len(naming.named) > 1 and naming.head is not None:
            ambiguous.append((column, sorted(naming.named, key=vocab.fields.index)))
        elif naming.named or naming.mentioned:
            out.mentions[column] = sorted(naming.named or naming.mentioned, key=vocab.fields.index)[0]
    if ambiguous:
        column, options = ambiguous[0]
        hints = " or ".join(map_hint(column, vocab.short(f)) for f in options)
        raise HeaderError(
            f"the column {column!r} could be the {' or the '.join(vocab.short(f) for f in options)}: "
            f"say which with {hints} (or {map_hint(column, NOT_USED)} to leave it out)"
        )
    for fld, found in claims.items():
        found.sort()
        if fld in out.mapping.values():
            for _, column in found:
                out.not_used[column] = f"the {vocab.short(fld)} comes from {_taken(out.mapping, fld)!r}"
            continue
        if len(found) > 1 and found[0][0] == found[1][0]:
            tied = [c for rank, c in found if rank == found[0][0]]
            raise HeaderError(
                f"columns {tied} could each be the {vocab.short(fld)}; name one with "
                f"{map_hint(tied[0], vocab.short(fld))}"
            )
        out.mapping[found[0][1]] = fld
        for _, column in found[1:]:
            out.not_used[column] = f"the {vocab.short(fld)} comes from {found[0][1]!r}"
    return out


def _taken(mapping: Mapping[str, str], fld: str) -> str:
    return next(c for c, f in mapping.items() if f == fld)


def names_a_field(cells: list[str], vocab: Vocabulary) -> bool:
    """Whether a row of cells reads as a header: some cell names a field, wholly or by a word. A cell longer than
    MAX_HEADER is data (a copy), never a header."""
    return any(c and len(c) <= MAX_HEADER and (vocab.exact(c) is not None or vocab.naming(c).named) for c in cells)


@dataclass
class ColumnUse:
    """What one file column became: a field (the score with its measure), or not used, with why and the `--map`
    that would use it when it looks like something copybot could use."""

    column: str
    field: str = ""  # "" when not used
    measure: str = ""  # for a score
    note: str = ""  # why it is not used
    suggest: str = ""  # the field it looks like
    hint: str = ""  # the --map that uses it

    def line(self, vocab: Vocabulary) -> str:
        if self.field:
            return f"{self.column} -> {vocab.short(self.field)}" + (f" ({self.measure})" if self.measure else "")
        why = f": {self.note}" if self.note else ""
        use = f"; to use it as the {vocab.short(self.suggest)}: {self.hint}" if self.hint else ""
        return f"{self.column} -> not used{why}{use}"

    def as_dict(self, vocab: Vocabulary) -> dict[str, str]:
        return {
            "column": self.column,
            "use": vocab.short(self.field) if self.field else NOT_USED,
            "field": self.field,
            "measure": self.measure,
            "note": self.note,
            "suggest": self.suggest,
            "hint": self.hint,
        }


def column_uses(
    headers: list[str],
    found: Columns,
    vocab: Vocabulary,
    samples: Mapping[str, list[str]],
    looks_like: Callable[[list[str]], str],
    *,
    notes: Mapping[str, str] | None = None,
    measures: Mapping[str, str] | None = None,
) -> list[ColumnUse]:
    """Every column and what it became. An unused column that looks like a field no column fills gets the `--map`
    that uses it: by its name (타깃 성별 mentions the age), or by its values (`looks_like` of its sampled values)."""
    notes, measures = notes or {}, measures or {}
    taken = set(found.mapping.values())
    out = []
    for column in headers:
        if column in found.mapping:
            out.append(ColumnUse(column, found.mapping[column], measure=measures.get(column, "")))
            continue
        note = notes.get(column) or found.not_used.get(column, "")
        mention = found.mentions.get(column, "")
        suggest = mention if mention not in taken else ""
        suggest = suggest or looks_like(samples.get(column, []))
        if suggest in taken:
            suggest = ""
        if suggest and not note:
            how = "name mentions" if suggest == mention else "values look like"
            note = f"its {how} the {vocab.short(suggest)}"
        hint = map_hint(column, vocab.short(suggest)) if suggest else ""
        out.append(ColumnUse(column, note=note, suggest=suggest, hint=hint))
    return out
