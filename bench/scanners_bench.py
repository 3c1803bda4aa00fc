"""Per-call cost of the governance scanners (stdlib ``timeit``).

Run from the repository root: ``python bench/scanners_bench.py``. Prints
microseconds per call (best of five ``timeit`` runs) for 1 KB and 10 KB inputs.
These are measurements, never assertions.

* *English* / *Russian* prompts exercise the ASCII and the Unicode fold paths.
* The *typical* answer is prose with a few numbers; the *entity-dense* answer
  has a date, five numbers, a URL and a citation every 230 characters, which is
  the expensive case for the fabrication scanner.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from functools import partial

from crp_gateway.governance.scanners import scan_input, scan_output

_PROSE = (
    "The committee met on 12 March 2024 to review the quarterly figures. Revenue "
    "rose to 4,250 units, about 12.5% above plan, while costs stayed flat. You can "
    "reach the team at ops@example.com or on +44 20 7946 0958. See "
    "https://example.com/reports/q1 for details [1]. "
)
_DENSE_ANSWER = (
    "Based on the report, revenue rose to 4,250 units in Q1, which is 12.5% above "
    "plan. Costs were flat at 3,100 units. The next review is on 14 June 2024; "
    "details are at https://example.com/reports/q1 and in Smith (2023). "
)
_TYPICAL_ANSWER = (
    "The review found that revenue grew faster than planned while costs held "
    "steady, mostly because the new pricing took effect early in the quarter. "
    "The team expects the trend to continue, although supply delays remain a "
    "risk for about 15% of orders. They suggest revisiting the forecast after "
    "the next meeting and sharing a short summary with the regional leads. "
)
_RUSSIAN = "Привет! Отчёт готов, выручка выросла на 12,5 %. Спасибо, команда. "


def _sized(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _per_call_us(func: Callable[[], object]) -> float:
    timer = timeit.Timer(func)
    loops, _ = timer.autorange()
    best = min(timer.repeat(repeat=5, number=loops))
    return best / loops * 1e6


def _cases(size: int) -> list[tuple[str, Callable[[], object]]]:
    prompt = _sized(_PROSE, size)
    inp = scan_input([prompt])
    return [
        ("scan_input  English prompt", partial(scan_input, [prompt])),
        ("scan_input  Russian prompt", partial(scan_input, [_sized(_RUSSIAN, size)])),
        (
            "scan_output typical answer, 1 KB ctx",
            partial(
                scan_output,
                _sized(_TYPICAL_ANSWER, size),
                [prompt[:1024]],
                input_scan=inp,
            ),
        ),
        (
            "scan_output entity-dense, 1 KB ctx",
            partial(
                scan_output,
                _sized(_DENSE_ANSWER, size),
                [prompt[:1024]],
                input_scan=inp,
            ),
        ),
        (
            "scan_output entity-dense, same ctx",
            partial(scan_output, _sized(_DENSE_ANSWER, size), [prompt], input_scan=inp),
        ),
    ]


def main() -> None:
    for size in (1024, 10 * 1024):
        for name, func in _cases(size):
            print(f"{size // 1024:>2} KB  {name:<38} {_per_call_us(func):9.1f} us/call")


if __name__ == "__main__":
    main()
