"""Both twins against lines written by the real Go 1.23 + logrus 1.9 code."""

from __future__ import annotations

from itertools import groupby
from types import ModuleType

import pytest

from golden_cases import LAYOUT_NAMES, load_golden_cases, local_zone

CASES = load_golden_cases()


def test_enough_golden_cases() -> None:
    assert len(CASES) >= 500
    assert len({case.name for case in CASES}) == len(CASES)
    assert len({case.tz for case in CASES}) >= 5


@pytest.mark.parametrize("layout", list(LAYOUT_NAMES))
def test_every_golden_line(formatter: ModuleType, layout: str) -> None:
    mismatches = []
    for tz, group in groupby(CASES, key=lambda case: case.tz):
        with local_zone(tz):
            for case in group:
                got = formatter.format_batch(
                    [case.subject], [case.reply], [case.payload], case.now_ns, LAYOUT_NAMES[layout]
                )
                if got != case.lines[layout]:
                    mismatches.append((case.name, got, case.lines[layout]))
    detail = "\n".join(
        f"{name}:\n  got  {got!r}\n  want {want!r}" for name, got, want in mismatches[:5]
    )
    assert not mismatches, f"{len(mismatches)} of {len(CASES)} lines differ, e.g.\n{detail}"


def test_golden_batch_in_one_call(formatter: ModuleType) -> None:
    """A whole batch in one call is the concatenation of its lines."""
    utc = [case for case in CASES if case.tz == "UTC"][:300]
    now = utc[0].now_ns
    same_time = [case for case in utc if case.now_ns == now]
    assert len(same_time) > 100
    with local_zone("UTC"):
        got = formatter.format_batch(
            [case.subject for case in same_time],
            [case.reply for case in same_time],
            [case.payload for case in same_time],
            now,
            LAYOUT_NAMES["json"],
        )
    assert got == b"".join(case.lines["json"] for case in same_time)
