"""Personal-data detector, method ``crp-gw.pii/1``.

Regular expressions for the *shape*, then the identifier's own validity rule,
so that a number which merely looks like an identifier is not reported:

* ``email``: ``local@domain.tld`` (local part up to 64 characters, a dotted
  domain, an alphabetic TLD of 2-24 letters).
* ``phone``: international E.164 form (``+`` then 8-15 digits, separators
  allowed); North American ``(NXX) NXX-XXXX`` / ``NXX-NXX-XXXX`` /
  ``NXX.NXX.XXXX`` with the NANP rules (area and exchange start with 2-9, the
  area is not ``N11``); UK national numbers with a separator (``020 7946 0958``,
  ``07700 900123``). Bare digit runs are never phones: they are too often ids,
  timestamps or version numbers.
* ``iban``: country code, two check digits and a BBAN, with the registry length
  for the country and the ISO 7064 mod-97 check.
* ``payment_card``: 13-19 digits (contiguous, or in 4-4-4-4[-3] / 4-6-5 /
  4-6-4 groups) passing the Luhn check *and* matching a known IIN range and
  length (Visa, Mastercard, American Express, Discover, JCB, Diners, UnionPay).
* ``us_ssn``: ``AAA-GG-SSSS`` with dashes, excluding areas 000, 666 and 900-999,
  group 00, serial 0000, and the two numbers SSA voided after advertising use.
* ``uk_nino``: two prefix letters obeying HMRC's rules (no D, F, I, Q, U, V; O
  not second; BG, GB, KN, NK, NT, TN, ZZ not allocated), six digits, suffix A-D.
* ``es_dni`` / ``es_nie``: eight digits (NIE: X/Y/Z and seven digits) and the
  mod-23 control letter.
* ``nl_bsn``: nine digits passing the 11-test, reported only when "BSN",
  "burgerservicenummer" or "sofinummer" appears in the 40 characters before it
  (one random nine-digit number in eleven passes the test).

It does not detect names, postal addresses, dates of birth, IP addresses, or
identifiers of other countries; phone coverage outside NANP and the UK relies on
the ``+`` prefix. Findings are kind and span only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from types import MappingProxyType

from .findings import Finding, drop_overlaps

METHOD_ID = "crp-gw.pii/1"
METHOD_VERSION = "1.0.0"

KINDS = (
    "email",
    "phone",
    "iban",
    "payment_card",
    "us_ssn",
    "uk_nino",
    "es_dni",
    "es_nie",
    "nl_bsn",
)

# IBAN lengths from the SWIFT IBAN registry, for the countries we check.
# fmt: off
_IBAN_LENGTHS: MappingProxyType[str, int] = MappingProxyType(
    {
        "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16,
        "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
        "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
        "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
        "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27,
        "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20,
        "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31,
        "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
        "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
        "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
    }
)
# fmt: on

_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_NIE_PREFIX: MappingProxyType[str, str] = MappingProxyType(
    {"X": "0", "Y": "1", "Z": "2"}
)
_BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_NINO_BAD_FIRST = frozenset("DFIQUV")
_NINO_BAD_SECOND = frozenset("DFIOQUV")
_NINO_BAD_PREFIX = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_SSN_VOIDED = frozenset({"078051120", "123456789"})

# Each pattern starts with a literal or a narrow class so the regex engine can
# skip ahead; boundaries are checked with lookarounds after the first character.
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9-])"
)
_E164 = re.compile(r"\+(?<![\w+]\+)[1-9](?:[ .\-]?\(?\d\)?){7,14}(?![\d])")
_NANP = re.compile(
    r"\((?<![\w(]\()(?P<a>[2-9]\d\d)\)[ ]?[2-9]\d\d[.\- ]\d{4}(?!\d|[.\-]\d)"
    r"|(?P<b>[2-9])(?<![\w.+\-/]\d)(?P<c>\d\d)(?P<sep>[.\-])[2-9]\d\d(?P=sep)\d{4}"
    r"(?!\d|[.\-]\d)"
)
_UK_PHONE = re.compile(
    r"0(?<![\w+.\-]0)(?:7\d{3}[ ]?\d{6}|[12]\d{1,3}[ ]\d{3,4}[ ]?\d{3,4})(?![\d])"
)
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?:[ ]?[A-Z0-9]){11,30}")
_CARD = re.compile(
    r"\d(?<!\d\d)(?<![\d][ -]\d)(?:"
    r"\d{12,18}"
    r"|\d{3}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{4}(?:(?P=s)\d{1,3})?"
    r"|\d{3}(?P<t>[ -])\d{6}(?P=t)\d{4,5}"
    r")(?!\d|[ -]\d)"
)
_SSN = re.compile(r"\d(?<![\w-]\d)\d\d-\d\d-\d{4}(?![\w-])")
_NINO = re.compile(
    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z] ?\d\d ?\d\d ?\d\d ?[A-D](?![A-Za-z0-9])"
)
_DNI = re.compile(r"\d(?<![\w-]\d)\d{7}-?[A-Z](?![A-Za-z0-9])")
_NIE = re.compile(r"[XYZ](?<![A-Za-z0-9][XYZ])-?\d{7}-?[A-Z](?![A-Za-z0-9])")
_BSN = re.compile(r"\d(?<![\w.-]\d)\d{8}(?![\w])|\d{4}\.\d{2}\.\d{3}(?![\w.])")
_BSN_CONTEXT = re.compile(r"bsn|burgerservicenummer|sofi-?nummer", re.IGNORECASE)
_BSN_WINDOW = 40
_BSN_KEYWORDS = ("bsn", "burgerservicenummer", "sofinummer", "sofi-nummer")
_NON_DIGIT = re.compile(r"\D")
_DIGIT_CLASSES = bytes(ord("d") if 48 <= b <= 57 else ord(".") for b in range(256))


def find_pii(text: str, text_index: int = 0) -> tuple[Finding, ...]:
    """Every personal-data finding in ``text``, overlaps resolved by priority."""
    candidates: list[Finding] = []
    for kind, finder in _finders(text):
        candidates.extend(
            Finding(kind, start, end, text_index) for start, end in finder(text)
        )
    return drop_overlaps(candidates)


def scan_pii(texts: Sequence[str]) -> tuple[Finding, ...]:
    """:func:`find_pii` over several texts (``text_index`` set accordingly)."""
    return tuple(
        finding for index, text in enumerate(texts) for finding in find_pii(text, index)
    )


_Finder = Callable[[str], Iterator[tuple[int, int]]]


def _finders(text: str) -> Iterator[tuple[str, _Finder]]:
    """The detectors worth running on ``text``, most trustworthy first.

    Each numeric detector is gated on the longest digit run it needs, read off a
    one-byte-per-character class string (one C-level pass).
    """
    if "@" in text:
        yield "email", _emails
    digits = text.encode("ascii", "replace").translate(_DIGIT_CLASSES)
    if b"dd" not in digits:
        return
    yield "iban", _ibans
    if b"dddd" in digits:
        yield "payment_card", _cards
        if "-" in text:
            yield "us_ssn", _ssns
    yield "uk_nino", _ninos
    if b"d" * 7 in digits:
        yield "es_nie", _nies
        yield "es_dni", _dnis
    if b"ddd" in digits:
        lowered = text.lower()
        if any(keyword in lowered for keyword in _BSN_KEYWORDS):
            yield "nl_bsn", _bsns
    if b"ddd" in digits or "+" in text:
        yield "phone", _phones


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for match in _EMAIL.finditer(text):
        start = match.start()
        if start and text[start - 1] in "._%+-":
            continue
        yield match.span()


def _phones(text: str) -> Iterator[tuple[int, int]]:
    if "+" in text:
        for match in _E164.finditer(text):
            if 8 <= len(_NON_DIGIT.sub("", match.group())) <= 15:
                yield match.span()
    for match in _NANP.finditer(text):
        area = match.group("a") or (match.group("b") + match.group("c"))
        if area[1:] != "11":
            yield match.span()
    for match in _UK_PHONE.finditer(text):
        if 10 <= len(_NON_DIGIT.sub("", match.group())) <= 11:
            yield match.span()


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN.finditer(text):
        span = _iban_span(text, match.start(), match.end())
        if span is not None:
            yield span


def _iban_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The valid IBAN at ``start`` (the regex may run into following words)."""
    length = _IBAN_LENGTHS.get(text[start : start + 2])
    if length is None:
        return None
    compact: list[str] = []
    pos = start
    while pos < end and len(compact) < length:
        if text[pos] != " ":
            compact.append(text[pos])
        pos += 1
    if len(compact) != length or (pos < len(text) and text[pos].isalnum()):
        return None
    return (start, pos) if iban_valid("".join(compact)) else None


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: registry length and mod-97 of the rearranged number."""
    iban = iban.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for match in _CARD.finditer(text):
        if card_valid(_NON_DIGIT.sub("", match.group())):
            yield match.span()


def card_valid(digits: str) -> bool:
    """Luhn check plus a known issuer range and length."""
    return _issuer_length_ok(digits) and luhn_valid(digits)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _issuer_length_ok(digits: str) -> bool:
    length = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    three = int(digits[:3])
    if digits[0] == "4":
        return length in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return length == 16
    if two in (34, 37):
        return length == 15
    if four == 6011 or 644 <= three <= 649 or two == 65:
        return 16 <= length <= 19
    if 3528 <= four <= 3589:
        return 16 <= length <= 19
    if 300 <= three <= 305 or two in (36, 38, 39):
        return 14 <= length <= 19
    return two == 62 and 16 <= length <= 19


def _ssns(text: str) -> Iterator[tuple[int, int]]:
    for match in _SSN.finditer(text):
        digits = match.group().replace("-", "")
        if ssn_valid(digits):
            yield match.span()


def ssn_valid(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return not (
        area in ("000", "666")
        or area[0] == "9"
        or group == "00"
        or serial == "0000"
        or digits in _SSN_VOIDED
    )


def _ninos(text: str) -> Iterator[tuple[int, int]]:
    for match in _NINO.finditer(text):
        prefix = match.group()[:2]
        if (
            prefix[0] not in _NINO_BAD_FIRST
            and prefix[1] not in _NINO_BAD_SECOND
            and prefix not in _NINO_BAD_PREFIX
        ):
            yield match.span()


def _dnis(text: str) -> Iterator[tuple[int, int]]:
    for match in _DNI.finditer(text):
        value = match.group().replace("-", "")
        if _DNI_LETTERS[int(value[:8]) % 23] == value[8]:
            yield match.span()


def _nies(text: str) -> Iterator[tuple[int, int]]:
    for match in _NIE.finditer(text):
        value = match.group().replace("-", "")
        number = int(_NIE_PREFIX[value[0]] + value[1:8])
        if _DNI_LETTERS[number % 23] == value[8]:
            yield match.span()


def _bsns(text: str) -> Iterator[tuple[int, int]]:
    for match in _BSN.finditer(text):
        window = text[max(0, match.start() - _BSN_WINDOW) : match.start()]
        if _BSN_CONTEXT.search(window) and bsn_valid(match.group().replace(".", "")):
            yield match.span()


def bsn_valid(digits: str) -> bool:
    """The Dutch 11-test (weights 9..2 and -1), excluding all-zero."""
    total = sum(int(d) * w for d, w in zip(digits, _BSN_WEIGHTS, strict=True))
    return total % 11 == 0 and total != 0


def describe() -> dict[str, object]:
    """The method entry for the well-known document."""
    return {
        "version": METHOD_VERSION,
        "description": (
            "Shape regexes plus validity rules: email; E.164, NANP and UK phone "
            "formats; IBAN (registry length, mod-97); payment cards (Luhn, IIN "
            "range and length); US SSN area/group/serial rules; UK NINO prefix "
            "rules; Spanish DNI/NIE control letter; Dutch BSN 11-test with a "
            "keyword nearby. No names or addresses (needs NER)."
        ),
        "kinds": list(KINDS),
        "iban_countries": sorted(_IBAN_LENGTHS),
    }
