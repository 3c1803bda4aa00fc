"""Prompt-injection detector for request text, method ``crp-gw.injection/1``.

A curated set of pattern *families*, each with a stable id, matched against every
view that :mod:`.normalize` builds (folded text, letter-spacing collapsed, decoded
base64 / hex / URL-encoded payloads). Case, separators (any run of up to six
non-word characters, or none), zero-width and bidi characters, homoglyphs,
full-width forms and encoded payloads therefore do not hide a phrase.

Families (the ``kind`` of a finding):

* ``override``: "ignore / disregard / forget ... previous / prior / your / system
  ... instructions / rules / guidelines", "forget everything above", "do not
  follow the previous instructions". A positional or possessive qualifier is
  required, so "ignore the previous paragraph's typo" and "ignore any
  instructions in the documents" do not match.
* ``role_hijack``: "you are now / act as / pretend to be ..." followed by a
  jailbreak descriptor (DAN, unrestricted, unfiltered, uncensored, jailbroken,
  free from rules, without restrictions, ...); "you are no longer an AI". Plain
  personas ("act as a travel agent", "pretend to be an evil wizard") do not match.
* ``prompt_exfiltration``: requests for *your* system prompt / instructions,
  "reveal the system prompt", "repeat the text above", "what were you told
  before this". Questions about system prompts in general do not match.
* ``jailbreak_marker``: "do anything now", "DAN mode", "jailbreak mode",
  ``[jailbreak]`` tags, "jailbreak successful".
* ``developer_mode``: "respond in developer mode", "simulate god mode",
  "developer mode output", "ChatGPT with developer mode enabled". "How do I
  enable developer mode on Android?" does not match.
* ``fake_system_tag``: chat-template tokens (``<|im_start|>``, ``<|system|>``,
  ``[INST]``, ``<<SYS>>``), ``<system>`` tags, line-leading "System override:",
  ``[system]`` and "## System prompt" headers, "--- end of system prompt ---".

Findings carry the family id and a span (into the original text; the whole blob
for decoded payloads), never the matched text. It is a phrase matcher: it does not
understand paraphrase, other languages, leetspeak, instructions split across
messages or images; and it flags quoted examples (a blog post that quotes "ignore
previous instructions" verbatim) as readily as real attacks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .findings import Finding, kinds_of
from .normalize import DecodeBudget, DecodeLimits, View, prepare

METHOD_ID = "crp-gw.injection/1"
METHOD_VERSION = "1.0.0"

# "~" in a template is a separator: up to six non-word characters, or none.
_SEP = r"[\W_]{0,6}"
_FILL_WORDS = r"(?:[a-z]{1,20}[\W_]{1,6}){0,3}?"

_OVERRIDE_VERB = r"(?:ignore|disregard|forget|bypass|override|overrule|neglect|discard)"
_OVERRIDE_FILL = r"(?:all|any|the|of|every|each|these|those|and|your|its)"
_OVERRIDE_QUAL = (
    r"(?:previous|prior|earlier|above|preceding|foregoing|former|initial|original"
    r"|old|system|developer|your)"
)
_OVERRIDE_NOUN = (
    r"(?:instructions?|prompts?|directives?|rules|guidelines|guardrails|constraints"
    r"|directions|commands|programming|policies|restrictions|filters)(?![a-z])"
)
_FOLLOW_NOUN = (
    r"(?:instructions?|prompts?|directives?|rules|guidelines|guardrails)(?![a-z])"
)
_OVERRIDE = (
    rf"{_OVERRIDE_VERB}(?:~{_OVERRIDE_FILL}){{0,3}}~{_OVERRIDE_QUAL}"
    rf"(?:~(?:{_OVERRIDE_FILL}|{_OVERRIDE_QUAL})){{0,3}}~{_OVERRIDE_NOUN}",
    rf"{_OVERRIDE_VERB}~(?:everything|all)~(?:(?:you|that)~)?"
    r"(?:above|before~this|prior~to~this|previously|(?:were|have~been|was)~told)",
    r"(?<![a-z])(?:do~not|don~t|never|stop|cease)~(?:follow|obey|adhere~to)(?:ing)?"
    rf"(?:~{_OVERRIDE_FILL}){{0,2}}~{_OVERRIDE_QUAL}"
    rf"(?:~(?:{_OVERRIDE_FILL}|{_OVERRIDE_QUAL})){{0,2}}~{_FOLLOW_NOUN}",
)

_HIJACK_LEAD = (
    r"(?:you~are~now|you~re~now|from~now~on~you~(?:are|will~be|shall~be)"
    r"|(?<![a-z])act(?:ing)?~as|pretend~(?:to~be|you~are|that~you~are)"
    r"|role~?play~as|you~will~(?:now~)?(?:act~as|be|become)|behave~(?:like|as)"
    r"|(?<![a-z])become)"
)
_HIJACK_LIMITS = (
    r"(?:restrictions|limits|limitations|rules|filters|guidelines|censorship"
    r"|constraints|morals|ethics)"
)
_HIJACK_DESCRIPTOR = (
    r"(?:dan|jailbroken|jailbreak|unrestricted|unfiltered|uncensored|unbound"
    r"|unshackled|amoral|unethical"
    rf"|free~(?:of|from)~(?:all~|any~)?{_HIJACK_LIMITS}"
    rf"|not~bound|without~(?:any~)?{_HIJACK_LIMITS}|no~{_HIJACK_LIMITS})(?![a-z])"
)
_ROLE_HIJACK = (
    rf"{_HIJACK_LEAD}~(?:an?~|the~)?{_FILL_WORDS}{_HIJACK_DESCRIPTOR}",
    r"you~(?:are|re)~no~longer~(?:(?:an?~)?(?:ai|assistant|language~model|chatbot"
    r"|chatgpt|claude|gpt)(?![a-z])|(?:bound|restricted|constrained)~by"
    r"|required~to~(?:follow|obey))",
)

_EXFIL_ANY_VERB = (
    r"(?:reveal|leak|dump|expose|disclose|divulge|recite|repeat|print|output"
    r"|display|show|tell~me|give~me|share|send~me|write~(?:out|down)|spell~out"
    r"|copy|paste|translate|what~(?:is|are|was|were))"
)
_EXFIL_STRONG_VERB = (
    r"(?:reveal|leak|dump|expose|disclose|divulge|recite|repeat|spell~out|print"
    r"|output|translate)"
)
_EXFIL_FILL = r"(?:(?:all|of|the|full|entire|exact|complete|verbatim)~){0,3}"
_EXFIL_ADJ = (
    r"(?:(?:full|entire|exact|complete|initial|original|hidden|secret|real|actual"
    r"|current|internal|underlying|first|system)~){0,3}"
)
_PROMPT_EXFILTRATION = (
    rf"{_EXFIL_ANY_VERB}~(?:me~)?{_EXFIL_FILL}your~{_EXFIL_ADJ}"
    r"(?:system~prompt|system~message|prompt|instructions|pre~?prompt)(?![a-z])",
    rf"{_EXFIL_STRONG_VERB}~(?:me~)?{_EXFIL_FILL}your~{_EXFIL_ADJ}"
    r"(?:rules|guidelines|directives|configuration|programming)(?![a-z])",
    r"(?:reveal|leak|dump|expose|disclose|divulge|recite|repeat)~(?:me~)?"
    r"(?:(?:the|full|entire|exact|complete|hidden|secret|initial|original)~){0,3}"
    r"(?:system|hidden|secret|initial|developer)~(?:prompt|message|instructions)"
    r"(?![a-z])",
    r"(?:repeat|print|output|recite|echo|reproduce)~(?:me~)?"
    r"(?:(?:all|of|the|every|everything|entire|full|exact|verbatim)~){0,3}"
    r"(?:text|words|content|lines|messages?|everything|instructions|prompt|tokens)~"
    r"(?:written~|that~(?:came|comes|appears?|is)~)?"
    r"(?:above|before~(?:this|my)|prior~to~this|at~the~(?:start|beginning|top)"
    r"|you~(?:were|have~been)~(?:given|told))",
    r"what~(?:were|was)~you~(?:told|instructed|given)~(?:before|prior|at~the~start)",
)

_JAILBREAK_MARKER = (
    r"do~anything~now",
    r"(?<![a-z])(?:dan|jailbreak|jailbroken|unfiltered|unrestricted|uncensored)"
    r"~mode(?![a-z])",
    r"\[[\W_]{0,3}jailbr(?:eak|oken)[\W_]{0,3}\]",
    r"(?:enable|activate|enter|switch~(?:to|into)|turn~on|unlock)~(?:the~)?dan"
    r"(?![a-z])",
    r"jailbr(?:eak|oken)~(?:successful|activated|enabled|complete)",
)

_MODE = r"(?:developer|dev|debug|sudo|admin|god|maintenance|root)~mode(?![a-z])"
_DEVELOPER_MODE = (
    r"(?:you~are|you~re|you~will~(?:now~)?(?:be|act|respond|answer)"
    r"|(?<![a-z])act|respond|answer|reply|behave)[a-z]{0,3}~(?:now~)?"
    rf"(?:in|with|under|using)~(?:the~|a~)?{_MODE}",
    rf"(?:simulate|emulate|pretend~(?:to~be|you~are)~in)~(?:the~|a~)?{_MODE}",
    r"(?:developer|god|sudo)~mode~(?:output|response|answer|reply)(?![a-z])",
    r"(?:chatgpt|(?<![a-z])gpt|claude|assistant|(?<![a-z])ai|llm)[a-z]{0,3}~"
    rf"(?:with~|in~)?{_MODE}~(?:enabled|activated|on|unlocked)(?![a-z])",
)

_FAKE_SYSTEM_TAG = (
    r"<[ \t]?\|[ \t]?(?:im_start|im_end|system|assistant|user|endoftext|eot_id"
    r"|start_header_id|end_header_id|begin_of_text|end_of_text)[ \t]?\|[ \t]?>",
    r"\[/?inst\]",
    r"<</?sys>>",
    r"</?(?:system|system_prompt|sys)>",
    r"^[ \t>*#\[(-]{0,6}(?:new~|updated~)?system~(?:prompt|override|instructions?"
    r"|command)[ \t\])*]{0,3}:",
    r"^[ \t>*]{0,3}[\[(](?:system|sys)(?:~(?:message|note|override|prompt))?[\])]",
    r"^[ \t]{0,3}#{2,}[ \t]*(?:new[ \t]+)?system[ \t]+(?:prompt|message|instructions)"
    r"[ \t]*:?[ \t]*$",
    r"^[\W_]{0,8}end~of~(?:the~)?(?:system~prompt|user~input|instructions)[\W_]{0,8}$",
)

# Substrings every match of a rule contains: ``(any of A) and (any of B) ...``.
# They are checked with ``in`` (fast, C-level) before the regex runs at all.
_Gates = tuple[tuple[str, ...], ...]
_VERB_GATE = (
    ("ignor", "disregard", "forget", "bypass", "overr", "neglect", "discard"),
)
_NOUN_GATE = ("instruction", "prompt", "directive", "rule", "guideline", "guardrail")
_DESCRIPTOR_GATE = (
    "dan",
    "jailbr",
    "restrict",
    "filter",
    "censor",
    "bound",
    "shackle",
    "moral",
    "ethic",
    "limit",
    "rule",
    "guideline",
    "constraint",
)
_MODE_GATE = (
    ("mode",),
    ("dev", "debug", "sudo", "admin", "god", "maintenance", "root"),
)

# Rules with *leads* are anchored: every match starts with one of the leads, so the
# regex is tried only where a lead occurs (``str.find``) instead of everywhere.
_HIJACK_LEADS = ("you", "from", "act", "pretend", "role", "behave", "become")

_RULES: tuple[tuple[str, str, _Gates], ...] = (
    ("override", _OVERRIDE[0], _VERB_GATE),
    ("override", _OVERRIDE[1], _VERB_GATE),
    ("override", _OVERRIDE[2], (("follow", "obey", "adhere"), _NOUN_GATE)),
    ("role_hijack", _ROLE_HIJACK[0], (_DESCRIPTOR_GATE,)),
    ("role_hijack", _ROLE_HIJACK[1], (("longer",),)),
    (
        "prompt_exfiltration",
        _PROMPT_EXFILTRATION[0],
        (("your",), ("prompt", "instruction", "message")),
    ),
    (
        "prompt_exfiltration",
        _PROMPT_EXFILTRATION[1],
        (("your",), ("rule", "guideline", "directive", "configuration", "programm")),
    ),
    (
        "prompt_exfiltration",
        _PROMPT_EXFILTRATION[2],
        (("prompt", "message", "instruction"),),
    ),
    (
        "prompt_exfiltration",
        _PROMPT_EXFILTRATION[3],
        (("repeat", "print", "output", "recite", "echo", "reproduce"),),
    ),
    (
        "prompt_exfiltration",
        _PROMPT_EXFILTRATION[4],
        (("told", "instructed", "given"),),
    ),
    ("jailbreak_marker", _JAILBREAK_MARKER[0], (("anything",),)),
    ("jailbreak_marker", _JAILBREAK_MARKER[1], (("mode",),)),
    ("jailbreak_marker", _JAILBREAK_MARKER[2], (("jailbr",),)),
    ("jailbreak_marker", _JAILBREAK_MARKER[3], (("dan",),)),
    ("jailbreak_marker", _JAILBREAK_MARKER[4], (("jailbr",),)),
    *(("developer_mode", pattern, _MODE_GATE) for pattern in _DEVELOPER_MODE),
    ("fake_system_tag", _FAKE_SYSTEM_TAG[0], (("|",),)),
    ("fake_system_tag", _FAKE_SYSTEM_TAG[1], (("inst]",),)),
    ("fake_system_tag", _FAKE_SYSTEM_TAG[2], (("sys>>",),)),
    ("fake_system_tag", _FAKE_SYSTEM_TAG[3], (("sys",),)),
    ("fake_system_tag", _FAKE_SYSTEM_TAG[4], (("system",),)),
    ("fake_system_tag", _FAKE_SYSTEM_TAG[5], (("sys",),)),
    ("fake_system_tag", _FAKE_SYSTEM_TAG[6], (("system",),)),
    ("fake_system_tag", _FAKE_SYSTEM_TAG[7], (("end",),)),
)

FAMILY_IDS: tuple[str, ...] = (
    "override",
    "role_hijack",
    "prompt_exfiltration",
    "jailbreak_marker",
    "developer_mode",
    "fake_system_tag",
)


@dataclass(frozen=True, slots=True)
class _Rule:
    family: str
    pattern: re.Pattern[str]
    gates: _Gates
    leads: tuple[str, ...] = ()


def _compile() -> tuple[_Rule, ...]:
    return tuple(
        _Rule(
            family,
            re.compile(source.replace("~", _SEP), re.MULTILINE),
            gates,
            _HIJACK_LEADS if source is _ROLE_HIJACK[0] else (),
        )
        for family, source, gates in _RULES
    )


_COMPILED = _compile()


@dataclass(frozen=True, slots=True)
class InjectionScan:
    """Injection findings for a list of texts, plus what the fold noticed."""

    findings: tuple[Finding, ...]
    hidden_chars: int
    decoded_payloads: int
    decode_truncated: bool

    @property
    def families(self) -> tuple[str, ...]:
        return kinds_of(self.findings)

    @property
    def detected(self) -> bool:
        return bool(self.findings)


def scan_injection(
    texts: Sequence[str], limits: DecodeLimits | None = None
) -> InjectionScan:
    """Search every view of every text; ``limits`` bound payload decoding."""
    budget = DecodeBudget(limits or DecodeLimits())
    seen: set[Finding] = set()
    hidden = 0
    for index, text in enumerate(texts):
        prepared = prepare(text, budget)
        hidden += prepared.hidden_chars
        for view in prepared.views:
            seen.update(_match(view, index))
    return InjectionScan(_merge(seen), hidden, budget.decoded, budget.truncated)


def _match(view: View, index: int) -> list[Finding]:
    present: dict[str, bool] = {}
    findings = []
    for rule in _COMPILED:
        if not all(_any_present(view.text, group, present) for group in rule.gates):
            continue
        for start, end in _rule_spans(rule, view.text):
            start, end = view.span(start, end)
            findings.append(Finding(rule.family, start, end, index, view.encoding))
    return findings


def _rule_spans(rule: _Rule, text: str) -> list[tuple[int, int]]:
    if not rule.leads:
        return [match.span() for match in rule.pattern.finditer(text)]
    spans = []
    for lead in rule.leads:
        at = text.find(lead)
        while at != -1:
            match = rule.pattern.match(text, at)
            if match is not None:
                spans.append(match.span())
            at = text.find(lead, at + 1)
    return spans


def _merge(findings: set[Finding]) -> tuple[Finding, ...]:
    """One finding per family and overlapping region (views can agree)."""
    ordered = sorted(
        findings, key=lambda f: (f.text_index, f.kind, f.encoding or "", f.start)
    )
    merged: list[Finding] = []
    for finding in ordered:
        last = merged[-1] if merged else None
        if (
            last is not None
            and (last.text_index, last.kind, last.encoding)
            == (finding.text_index, finding.kind, finding.encoding)
            and finding.start < last.end
        ):
            merged[-1] = replace(last, end=max(last.end, finding.end))
        else:
            merged.append(finding)
    return tuple(sorted(merged, key=lambda f: (f.text_index, f.start, f.end, f.kind)))


def _any_present(text: str, needles: tuple[str, ...], seen: dict[str, bool]) -> bool:
    for needle in needles:
        hit = seen.get(needle)
        if hit is None:
            hit = seen[needle] = needle in text
        if hit:
            return True
    return False


def describe() -> dict[str, object]:
    """The method entry for the well-known document."""
    return {
        "version": METHOD_VERSION,
        "description": (
            "Curated phrase families matched on NFKC/homoglyph/zero-width folded "
            "text, letter-spacing collapsed text and decoded base64, hex and "
            "URL-encoded payloads (crp-gw.normalize/1). Findings carry family and "
            "span only."
        ),
        "families": list(FAMILY_IDS),
        "normalization": "crp-gw.normalize/1",
        "decode_limits": _limits_doc(DecodeLimits()),
    }


def _limits_doc(limits: DecodeLimits) -> dict[str, int]:
    return {
        "max_depth": limits.max_depth,
        "max_candidates": limits.max_candidates,
        "max_decoded_chars": limits.max_decoded_chars,
        "min_blob_chars": 20,
    }
