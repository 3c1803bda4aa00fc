"""Adversarial text normalisation, method ``crp-gw.normalize/1``.

Turns one input string into the *views* the injection detector matches against.

What the fold does, per character:

* drops zero-width characters, bidi controls and every other format character
  (Unicode category ``Cf``), plus a short list of invisible fillers (Hangul
  fillers, the combining grapheme joiner, the braille blank, ...);
* decodes Unicode *tag* characters (U+E0020..U+E007E, "ASCII smuggling") to the
  ASCII letters they shadow;
* folds look-alike letters (Cyrillic and Greek homoglyphs, Latin small capitals,
  dotless i) to the Latin letter they imitate;
* applies the NFKD compatibility mapping and drops combining marks, which covers
  the NFKC folds (full-width forms, ligatures, mathematical alphanumerics, circled
  letters) and strips accents used to break words (``ïgnörè``);
* maps every Unicode space to U+0020 and lower-cases (``str.casefold``).

Whitespace runs are *not* collapsed: the detector's patterns accept any run of
separators instead, which keeps ASCII offsets identical to the original and makes
the fast path a single ``str.lower``. Every view records, for each of its
characters, the offset of the original character it came from, so findings carry
spans into the caller's text.

Extra views:

* letter-spaced runs (``i g n o r e``, ``i.g.n.o.r.e``) collapsed to words;
* decoded payloads: base64 / base64url and hex blobs of 20 characters or more
  whose bytes are UTF-8 text that is at least 90 % printable, and URL-encoded
  runs with three escapes or more. Decoded text is folded and searched again, up
  to :attr:`DecodeLimits.max_depth` levels; a finding in a payload has the span
  of the outermost encoded blob.

It does not: undo leetspeak (``1gn0re``), ROT13, HTML entities, compression, or
payloads split across messages; decoding stops after ``max_candidates`` blobs or
``max_decoded_chars`` decoded characters per scan, so padding a prompt with
decoy blobs can hide a later one (the count is reported as ``truncated``).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

METHOD_ID = "crp-gw.normalize/1"
METHOD_VERSION = "1.0.0"
UNICODE_VERSION = unicodedata.unidata_version

_TAG_FIRST = 0xE0020
_TAG_LAST = 0xE007E
_TAG_OFFSET = 0xE0000

# Invisible characters outside category Cf (which is dropped wholesale).
_INVISIBLE = frozenset(
    {
        0x034F,  # combining grapheme joiner
        0x115F,  # Hangul choseong filler
        0x1160,  # Hangul jungseong filler
        0x17B4,  # Khmer vowel inherent aq
        0x17B5,  # Khmer vowel inherent aa
        0x2800,  # braille pattern blank
        0x3164,  # Hangul filler
        0xFFA0,  # half-width Hangul filler
    }
)

# Look-alike letters that NFKD leaves alone, keyed by the raw character so that
# case-dependent shapes fold correctly (Greek capital eta looks like H, the small
# one like n). Written as escapes: the literal glyphs are the problem.
_CONFUSABLES: MappingProxyType[str, str] = MappingProxyType(
    {
        # Cyrillic small letters
        "\u0430": "a",
        "\u0432": "b",
        "\u0433": "r",
        "\u0435": "e",
        "\u043a": "k",
        "\u043c": "m",
        "\u043d": "h",
        "\u043e": "o",
        "\u043f": "n",
        "\u0440": "p",
        "\u0441": "c",
        "\u0442": "t",
        "\u0443": "y",
        "\u0445": "x",
        "\u044c": "b",
        "\u0455": "s",
        "\u0456": "i",
        "\u0458": "j",
        "\u0475": "v",
        "\u04bb": "h",
        "\u04cf": "l",
        "\u0501": "d",
        "\u051b": "q",
        "\u051d": "w",
        # Cyrillic capital letters
        "\u0410": "a",
        "\u0412": "b",
        "\u0415": "e",
        "\u041a": "k",
        "\u041c": "m",
        "\u041d": "h",
        "\u041e": "o",
        "\u0420": "p",
        "\u0421": "c",
        "\u0422": "t",
        "\u0423": "y",
        "\u0425": "x",
        "\u0405": "s",
        "\u0406": "i",
        "\u0408": "j",
        "\u04ae": "y",
        "\u04c0": "l",
        "\u051a": "q",
        "\u051c": "w",
        # Greek small letters
        "\u03b1": "a",
        "\u03b2": "b",
        "\u03b3": "y",
        "\u03b5": "e",
        "\u03b7": "n",
        "\u03b9": "i",
        "\u03ba": "k",
        "\u03bd": "v",
        "\u03bf": "o",
        "\u03c1": "p",
        "\u03c4": "t",
        "\u03c5": "u",
        "\u03c7": "x",
        "\u03c9": "w",
        "\u03f2": "c",
        "\u03f3": "j",
        # Greek capital letters
        "\u0391": "a",
        "\u0392": "b",
        "\u0395": "e",
        "\u0396": "z",
        "\u0397": "h",
        "\u0399": "i",
        "\u039a": "k",
        "\u039c": "m",
        "\u039d": "n",
        "\u039f": "o",
        "\u03a1": "p",
        "\u03a4": "t",
        "\u03a5": "y",
        "\u03a7": "x",
        "\u03f9": "c",
        # Latin letters and small capitals that have no compatibility mapping
        "\u0131": "i",
        "\u0237": "j",
        "\u0251": "a",
        "\u0261": "g",
        "\u0269": "i",
        "\u1d00": "a",
        "\u0299": "b",
        "\u1d04": "c",
        "\u1d05": "d",
        "\u1d07": "e",
        "\ua730": "f",
        "\u0262": "g",
        "\u029c": "h",
        "\u026a": "i",
        "\u1d0a": "j",
        "\u1d0b": "k",
        "\u029f": "l",
        "\u1d0d": "m",
        "\u0274": "n",
        "\u1d0f": "o",
        "\u1d18": "p",
        "\u0280": "r",
        "\ua731": "s",
        "\u1d1b": "t",
        "\u1d1c": "u",
        "\u1d20": "v",
        "\u1d21": "w",
        "\u028f": "y",
        "\u1d22": "z",
    }
)

# Supplementary-plane format characters (the BMP ones are found by category).
_SUPPLEMENTARY_FORMAT = (
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE007F, 0xE007F),
)
_SHORT_RUN = 64
# The pre-fold maps every character to exactly one, so offsets survive it; what
# is to be deleted becomes a slot character that is removed at the very end.
_HIDDEN_SLOT = "\x00"
_MARK_SLOT = "\x01"
_SLOTS = re.compile("[\x00\x01]+")


def _fold_tables() -> tuple[dict[int, str | None], frozenset[int]]:
    """The pre-fold translate table and the set of combining marks.

    Built once at import from the interpreter's Unicode database (a BMP scan,
    about 20 ms); the Unicode version is published with the method.
    """
    hidden: dict[int, str | None] = dict.fromkeys(_INVISIBLE)
    marks: set[int] = set()
    spaces: dict[int, str | None] = {}
    for code in range(0x80, 0x10000):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cf":
            hidden[code] = None
        elif category in ("Mn", "Me"):
            marks.add(code)
        elif char.isspace():
            spaces[code] = " "
    for first, last in _SUPPLEMENTARY_FORMAT:
        hidden.update(dict.fromkeys(range(first, last + 1)))
    pre: dict[int, str | None] = {**spaces}
    pre.update(dict.fromkeys(marks - _INVISIBLE, _MARK_SLOT))
    pre.update(dict.fromkeys(hidden, _HIDDEN_SLOT))
    pre.update({ord(k): v for k, v in _CONFUSABLES.items()})
    pre.update(
        {code: chr(code - _TAG_OFFSET) for code in range(_TAG_FIRST, _TAG_LAST + 1)}
    )
    return pre, frozenset(marks - _INVISIBLE)


def _char_class(codes: frozenset[int]) -> str:
    """A regex character class matching exactly ``codes`` (as escaped ranges)."""
    ranges: list[tuple[int, int]] = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    body = "".join(
        f"\\u{first:04x}" if first == last else f"\\u{first:04x}-\\u{last:04x}"
        for first, last in ranges
    )
    return f"[{body}]"


_PRE_DICT, _MARKS = _fold_tables()
_PRE_TABLE = MappingProxyType(_PRE_DICT)
_MARK_RE = re.compile(_char_class(_MARKS))
_TAG_RE = re.compile(f"[{chr(_TAG_FIRST)}-{chr(_TAG_LAST)}]")

# Three or more single letters/digits separated by 1-3 non-alphanumerics.
_SPACED_RUN = re.compile(
    r"(?<![a-z0-9])[a-z0-9](?:[^a-z0-9\n]{1,3}[a-z0-9](?![a-z0-9])){2,}"
)
_B64_CANDIDATE = re.compile(r"[A-Za-z0-9+/_-]{20,8192}={0,2}")
_HEX_CANDIDATE = re.compile(
    r"(?:[0-9A-Fa-f]{2}){10,4096}(?![0-9A-Fa-f])|(?:\\x[0-9A-Fa-f]{2}){6,4096}"
)
_URL_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9._~+!*'(),;:@&=$/?#\[\]-])+")
_URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_HAS_LOWER = re.compile(r"[a-z]")
_HAS_UPPER = re.compile(r"[A-Z]")
_MIN_URL_ESCAPES = 3
_MIN_PRINTABLE = 0.9


def _class_table(members: str, member: str, newline: str = ".") -> bytes:
    """A ``bytes.translate`` table folding bytes to ``member`` / ``.`` classes."""
    table = bytearray(b"." * 256)
    for char in members:
        table[ord(char)] = ord(member)
    table[ord("\n")] = ord(newline)
    return bytes(table)


def _classes(text: str, table: bytes) -> bytes:
    """``text`` as one class byte per character (non-ASCII become ``.``)."""
    return text.encode("ascii", "replace").translate(table)


_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_HEX_DIGITS = "0123456789abcdefABCDEF"
_B64_ALPHABET = _ALNUM + _ALNUM.upper() + "+/_-"
# Cheap gates: one C-level pass to a class string, then a literal search.
_SPACING_CLASSES = _class_table(_ALNUM, "a", "\n")
_B64_CLASSES = _class_table(_B64_ALPHABET, "b")
_HEX_CLASSES = _class_table(_HEX_DIGITS, "h")
_SPACED_PAIRS = (b".a.a.", b".a..a.", b".a...a.")
_MIN_BLOB = 20

# A decoder maps an encoded blob to its text, or ``None`` when it is not text.
_Decoder = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on payload decoding for one scan (published with the method)."""

    max_depth: int = 2
    max_candidates: int = 64
    max_decoded_chars: int = 65_536


@dataclass(slots=True)
class DecodeBudget:
    """What is left of :class:`DecodeLimits` during one scan (call-local)."""

    limits: DecodeLimits = field(default_factory=DecodeLimits)
    candidates: int = 0
    decoded_chars: int = 0
    decoded: int = 0
    truncated: bool = False

    def take(self, size: int) -> bool:
        """Reserve room for one candidate of ``size`` characters."""
        if (
            self.candidates >= self.limits.max_candidates
            or self.decoded_chars + size > self.limits.max_decoded_chars
        ):
            self.truncated = True
            return False
        self.candidates += 1
        self.decoded_chars += size
        return True


@dataclass(frozen=True, slots=True)
class Folded:
    """A folded string and, per folded character, its original ``[start, end)``.

    ``starts``/``ends`` are ``None`` for the identity (pure-ASCII input). Inside a
    long non-ASCII run whose fold changed its length, every character maps to the
    whole run: spans then widen to run boundaries rather than guess.
    """

    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None
    hidden_chars: int = 0


@dataclass(frozen=True, slots=True)
class View:
    """Folded text plus a way back to the original offsets.

    ``anchor`` is set for decoded payloads: every span in such a view maps to the
    anchor, the encoded blob in the original text.
    """

    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None
    anchor: tuple[int, int] | None = None
    encoding: str | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``(start, end)`` of the folded slice ``[start, end)``."""
        if self.anchor is not None:
            return self.anchor
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


@dataclass(frozen=True, slots=True)
class Prepared:
    """All views of one text and what the fold noticed on the way."""

    views: tuple[View, ...]
    hidden_chars: int


def fold(text: str) -> Folded:
    """Fold ``text`` as the module docstring describes."""
    if text.isascii():
        return Folded(text.lower())
    pre = text.translate(_PRE_TABLE)
    hidden = pre.count(_HIDDEN_SLOT) + len(_TAG_RE.findall(text))
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    _fold_span(pre, 0, len(pre), parts, starts, ends)
    folded = "".join(parts)
    if _SLOTS.search(folded) is None:
        return Folded(folded, tuple(starts), tuple(ends), hidden)
    return _drop_slots(folded, starts, ends, hidden)


def _fold_span(
    pre: str, lo: int, hi: int, parts: list[str], starts: list[int], ends: list[int]
) -> None:
    """Fold ``pre[lo:hi]``, keeping exact offsets wherever the length is kept.

    A slice whose fold changes its length (a ligature, a compatibility expansion)
    is halved until the pieces are short, then folded per character.
    """
    piece = _finish(pre[lo:hi])
    if len(piece) == hi - lo:
        parts.append(piece)
        starts.extend(range(lo, hi))
        ends.extend(range(lo + 1, hi + 1))
    elif hi - lo <= _SHORT_RUN:
        for offset in range(lo, hi):
            char = _finish(pre[offset])
            parts.append(char)
            starts.extend([offset] * len(char))
            ends.extend([offset + 1] * len(char))
    else:
        middle = (lo + hi) // 2
        _fold_span(pre, lo, middle, parts, starts, ends)
        _fold_span(pre, middle, hi, parts, starts, ends)


def _drop_slots(folded: str, starts: list[int], ends: list[int], hidden: int) -> Folded:
    parts: list[str] = []
    kept_starts: list[int] = []
    kept_ends: list[int] = []
    pos = 0
    for slot in _SLOTS.finditer(folded):
        parts.append(folded[pos : slot.start()])
        kept_starts.extend(starts[pos : slot.start()])
        kept_ends.extend(ends[pos : slot.start()])
        pos = slot.end()
    parts.append(folded[pos:])
    kept_starts.extend(starts[pos:])
    kept_ends.extend(ends[pos:])
    return Folded("".join(parts), tuple(kept_starts), tuple(kept_ends), hidden)


def fold_run(raw: str) -> str:
    """Fold a string without keeping offsets (decoded payloads)."""
    return _SLOTS.sub("", _finish(raw.translate(_PRE_TABLE)))


def _finish(text: str) -> str:
    """Case, compatibility and accent folds after the pre-fold table."""
    text = text.lower()
    if text.isascii():
        return text
    text = _MARK_RE.sub("", unicodedata.normalize("NFKD", text))
    return unicodedata.normalize("NFC", text).lower()


def prepare(text: str, budget: DecodeBudget) -> Prepared:
    """Every view of ``text`` the detector should search."""
    folded = fold(text)
    root = View(folded.text, folded.starts, folded.ends)
    views = [root]
    collapsed = collapse_spaced(root)
    if collapsed is not None:
        views.append(collapsed)
    views.extend(_payload_views(text, None, None, 1, budget))
    return Prepared(tuple(views), folded.hidden_chars)


def collapse_spaced(view: View) -> View | None:
    """A view with letter-spaced runs (``i g n o r e``) joined, or ``None``."""
    classes = b"." + _classes(view.text, _SPACING_CLASSES) + b"."
    if not any(pair in classes for pair in _SPACED_PAIRS):
        return None
    runs = list(_SPACED_RUN.finditer(view.text))
    if not runs:
        return None
    keep: list[int] = []
    pos = 0
    for run in runs:
        start, end = run.span()
        keep.extend(range(pos, start))
        keep.extend(i for i in range(start, end) if view.text[i].isalnum())
        pos = end
    keep.extend(range(pos, len(view.text)))
    text = "".join(view.text[i] for i in keep)
    if view.starts is None or view.ends is None:
        return View(
            text, tuple(keep), tuple(i + 1 for i in keep), view.anchor, view.encoding
        )
    starts = tuple(view.starts[i] for i in keep)
    ends = tuple(view.ends[i] for i in keep)
    return View(text, starts, ends, view.anchor, view.encoding)


def _payload_views(
    raw: str,
    anchor: tuple[int, int] | None,
    encoding: str | None,
    depth: int,
    budget: DecodeBudget,
) -> list[View]:
    """Decode the payloads in ``raw`` and fold them, recursing to ``max_depth``."""
    if depth > budget.limits.max_depth or len(raw) < _MIN_BLOB:
        return []
    views: list[View] = []
    for start, end, kind, decoded in _decoded_payloads(raw, budget):
        outer = anchor if anchor is not None else (start, end)
        label = encoding if encoding is not None else kind
        view = View(fold_run(decoded), anchor=outer, encoding=label)
        views.append(view)
        collapsed = collapse_spaced(view)
        if collapsed is not None:
            views.append(collapsed)
        views.extend(_payload_views(decoded, outer, label, depth + 1, budget))
    return views


def _decoded_payloads(
    raw: str, budget: DecodeBudget
) -> list[tuple[int, int, str, str]]:
    """``(start, end, encoding, text)`` for every blob that decodes to text."""
    found: list[tuple[int, int, str, str]] = []
    if b"b" * _MIN_BLOB in _classes(raw, _B64_CLASSES):
        for match in _B64_CANDIDATE.finditer(raw):
            blob = match.group()
            if _HAS_LOWER.search(blob) and _HAS_UPPER.search(blob):
                _add(found, match, "base64", _decode_base64, budget)
    if "\\x" in raw or b"h" * _MIN_BLOB in _classes(raw, _HEX_CLASSES):
        for match in _HEX_CANDIDATE.finditer(raw):
            _add(found, match, "hex", _decode_hex, budget)
    if "%" in raw and len(_URL_ESCAPE.findall(raw)) >= _MIN_URL_ESCAPES:
        for match in _URL_RUN.finditer(raw):
            if len(_URL_ESCAPE.findall(match.group())) >= _MIN_URL_ESCAPES:
                _add(found, match, "url", _decode_url, budget)
    return found


def _add(
    found: list[tuple[int, int, str, str]],
    match: re.Match[str],
    kind: str,
    decoder: _Decoder,
    budget: DecodeBudget,
) -> None:
    blob = match.group()
    if not budget.take(len(blob)):
        return
    text = decoder(blob)
    if text is not None and _looks_like_text(text):
        budget.decoded += 1
        found.append((match.start(), match.end(), kind, text))


def _decode_base64(blob: str) -> str | None:
    unpadded = blob.rstrip("=").replace("-", "+").replace("_", "/")
    if len(unpadded) % 4 == 1:
        return None
    padded = unpadded + "=" * (-len(unpadded) % 4)
    try:
        return base64.b64decode(padded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _decode_hex(blob: str) -> str | None:
    try:
        return bytes.fromhex(blob.replace("\\x", "")).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _decode_url(blob: str) -> str | None:
    try:
        return urllib.parse.unquote_plus(blob, errors="strict")
    except UnicodeDecodeError:
        return None


def _looks_like_text(text: str) -> bool:
    if not text:
        return False
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return printable >= _MIN_PRINTABLE * len(text) and any(c.isalpha() for c in text)
