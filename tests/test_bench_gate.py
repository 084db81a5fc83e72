"""bench/gate.py (make bench-check / bench-save) on fabricated ratios: no benchmark runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_gate() -> ModuleType:
    # bench/ is not a package: load the script by path.
    spec = importlib.util.spec_from_file_location("bench_gate", ROOT / "bench" / "gate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while defining
    spec.loader.exec_module(module)
    return module


gate = _load_gate()

A = "bench/test_x.py::test_a"
B = "bench/test_x.py::test_b[json]"
CAL = "cal/1"


def _write_baseline(path: Path, ratios: dict[str, float], calibration: str = CAL) -> Path:
    path.write_text(gate.dump_baseline(gate.Baseline(calibration, gate.python_id(), ratios)))
    return path


class FakeRuns:
    """Stands in for run_suite: each call returns the next pass's fabricated ratios."""

    def __init__(self, *passes: dict[str, float], calibration: str = CAL) -> None:
        self.passes = list(passes)
        self.calibration = calibration
        self.targets: list[list[str]] = []

    def __call__(self, targets: Sequence[str], pytest_args: Sequence[str]) -> dict[str, Any]:
        self.targets.append(list(targets))
        ratios = self.passes.pop(0)
        benchmarks = [
            {
                "fullname": name,
                "stats": {"median": ratio * 0.002},
                "extra_info": {"calibration": {"id": self.calibration, "median": 0.002}},
            }
            for name, ratio in ratios.items()
        ]
        return {"machine_info": {"node": "x"}, "benchmarks": benchmarks}


def test_compare_within_threshold_passes() -> None:
    report = gate.compare({A: 1.0, B: 10.0}, {A: 1.2, B: 13.9}, 0.4)
    assert report.code == 0
    assert len(report.lines) == 1
    assert report.lines[0].startswith("bench-check: PASS: 2 benchmarks within +40%")
    assert "+39.0%" in report.lines[0] and B in report.lines[0]


def test_compare_over_threshold_fails_one_line_each() -> None:
    report = gate.compare({A: 1.0, B: 10.0}, {A: 1.5, B: 14.5}, 0.4)
    assert report.code == 1
    assert report.lines == [
        f"REGRESSION {A}: ratio 1 -> 1.5 (+50.0% > +40%)",
        f"REGRESSION {B}: ratio 10 -> 14.5 (+45.0% > +40%)",
        "bench-check: FAIL: 2 of 2 benchmarks slower than +40% of their baseline ratio",
    ]


def test_compare_faster_and_new_and_missing() -> None:
    report = gate.compare({A: 1.0, B: 10.0}, {A: 0.3, "bench/t.py::new": 5.0}, 0.4)
    assert report.code == 0
    assert "1 not in the baseline" in report.lines[-1]
    assert "1 of the baseline not run" in report.lines[-1]


def test_compare_nothing_in_common_is_bad_input() -> None:
    with pytest.raises(gate.GateError):
        gate.compare({A: 1.0}, {B: 1.0}, 0.4)


@pytest.mark.parametrize(
    ("text", "value"), [("40%", 0.4), ("40", 0.4), ("median:25%", 0.25), (" 7.5% ", 0.075)]
)
def test_parse_threshold(text: str, value: float) -> None:
    assert gate.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["mean:40%", "forty", "0%", "-5%", ""])
def test_parse_threshold_rejects(text: str) -> None:
    with pytest.raises(gate.GateError):
        gate.parse_threshold(text)


def test_baseline_round_trip_has_only_ratios(tmp_path: Path) -> None:
    path = _write_baseline(tmp_path / "ratios.json", {B: 10.123456789, A: 0.5})
    text = path.read_text()
    assert str(tmp_path) not in text and "machine_info" not in text
    loaded = gate.load_baseline(path)
    assert loaded.calibration == CAL
    assert loaded.ratios == {A: 0.5, B: 10.123}


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        json.dumps({"format": "other", "ratios": {A: 1.0}, "calibration": CAL}),
        json.dumps({"format": gate.FORMAT, "ratios": {}, "calibration": CAL}),
        json.dumps({"format": gate.FORMAT, "ratios": {A: -1.0}, "calibration": CAL}),
        json.dumps({"format": gate.FORMAT, "ratios": {A: "1"}, "calibration": CAL}),
        # the old pytest-benchmark file: absolute times, not ratios
        json.dumps({"machine_info": {}, "benchmarks": []}),
    ],
)
def test_corrupt_baseline_exits_2_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "ratios.json"
    path.write_text(text)
    runs = FakeRuns()
    assert gate.main(["check", "--baseline", str(path)], runner=runs) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("bench-check: error: ")
    assert "Traceback" not in err
    assert runs.targets == []


def test_missing_baseline_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate.main(["check", "--baseline", str(tmp_path / "none.json")], runner=FakeRuns()) == 2
    err = capsys.readouterr().err
    assert "no baseline at" in err and "make bench-save" in err


def test_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_baseline(tmp_path / "ratios.json", {A: 1.0, B: 10.0})
    runs = FakeRuns({A: 1.1, B: 9.0})
    assert gate.main(["check", "--baseline", str(path), "--", "-k", "x"], runner=runs) == 0
    assert runs.targets == [["bench/"]]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("bench-check: PASS")


def test_check_noise_once_is_measured_again_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_baseline(tmp_path / "ratios.json", {A: 1.0, B: 10.0})
    runs = FakeRuns({A: 1.9, B: 10.0}, {A: 1.1}, {A: 1.2})
    assert gate.main(["check", "--baseline", str(path)], runner=runs) == 0
    assert runs.targets == [["bench/"], [A], [A]]  # only the suspect is run again
    assert "3 passes" in capsys.readouterr().out


def test_check_regression_confirmed_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_baseline(tmp_path / "ratios.json", {A: 1.0, B: 10.0})
    runs = FakeRuns({A: 1.7, B: 10.5}, {A: 1.6})
    assert gate.main(["check", "--baseline", str(path), "--fail", "40%"], runner=runs) == 1
    assert runs.targets == [["bench/"], [A]]  # 2 passes over the threshold: decided
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"REGRESSION {A}: ratio 1 -> 1.6 (+60.0% > +40%)"
    assert out[1].startswith("bench-check: FAIL: 1 of 2 benchmarks") and len(out) == 2


def test_check_threshold_is_overridable(tmp_path: Path) -> None:
    path = _write_baseline(tmp_path / "ratios.json", {A: 1.0})
    assert gate.main(["check", "--baseline", str(path), "--fail", "80%"], FakeRuns({A: 1.7})) == 0


def test_check_calibration_mismatch_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_baseline(tmp_path / "ratios.json", {A: 1.0}, calibration="old/0")
    assert gate.main(["check", "--baseline", str(path)], runner=FakeRuns({A: 1.0})) == 2
    assert "calibration" in capsys.readouterr().err


def test_save_writes_median_of_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BENCH_SLOWDOWN", raising=False)
    path = tmp_path / "baseline" / "ratios.json"
    runs = FakeRuns({A: 1.0, B: 9.0}, {A: 3.0, B: 10.0}, {A: 2.0, B: 11.0})
    assert gate.main(["save", "--baseline", str(path)], runner=runs) == 0
    assert gate.load_baseline(path).ratios == pytest.approx({A: 2.0, B: 10.0})
    assert capsys.readouterr().out.startswith("bench-save: 2 ratios")


def test_save_refuses_a_slowed_down_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_SLOWDOWN", "1.6")
    assert gate.main(["save", "--baseline", str(tmp_path / "r.json")], runner=FakeRuns()) == 2
    assert not (tmp_path / "r.json").exists()


def test_estimate_is_the_majority_verdict() -> None:
    assert gate.estimate([5.0]) == 5.0
    assert gate.estimate([5.0, 1.0]) == 1.0
    assert gate.estimate([5.0, 1.0, 3.0]) == 3.0


# -- compare: the working tree against a base commit's build, side by side -----


class FakeSides:
    """Stands in for run_suite in compare: fabricated ratios per side and round,
    reported as imported from the side's PYTHONPATH (as bench/conftest.py does)."""

    def __init__(self, base: list[dict[str, float]], tree: list[dict[str, float]]) -> None:
        self.passes = {"base": list(base), "tree": list(tree)}
        self.order: list[str] = []
        self.envs: list[dict[str, str]] = []
        self.base_src = ""
        self.imports_tree = False  # every run imports the tree's package, as a broken setup would

    def __call__(
        self, targets: Sequence[str], pytest_args: Sequence[str], env: dict[str, str]
    ) -> dict[str, Any]:
        side = "base" if env["PYTHONPATH"] == self.base_src else "tree"
        self.order.append(side)
        self.envs.append(dict(env))
        src = ROOT / "src" if self.imports_tree else Path(env["PYTHONPATH"])
        package = str((src / "events_audit").resolve())
        benchmarks = [
            {
                "fullname": name,
                "stats": {"median": ratio * 0.002},
                "extra_info": {
                    "calibration": {"id": CAL, "median": 0.002},
                    "package": package,
                },
            }
            for name, ratio in self.passes[side].pop(0).items()
        ]
        return {"benchmarks": benchmarks}


@pytest.fixture
def base_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No worktree build: the base's 'build' is an empty directory."""
    monkeypatch.setattr(gate, "build_base", lambda commit: tmp_path)
    return tmp_path


def _sides(base_tree: Path, base: list[dict[str, float]], tree: list[dict[str, float]]):
    runs = FakeSides(base, tree)
    runs.base_src = str(base_tree / "src")
    return runs


def test_compare_an_unchanged_tree_passes_with_interleaved_rounds(
    base_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _sides(
        base_tree,
        [{A: 1.0, B: 10.0}, {A: 1.1, B: 10.0}, {A: 1.0, B: 9.0}],
        [{A: 1.05, B: 9.5}, {A: 1.0, B: 10.5}, {A: 1.2, B: 9.0}],
    )
    assert gate.main(["compare", "--base", "HEAD", "--rounds", "3"], runner=runs) == 0
    assert runs.order == ["base", "tree", "tree", "base", "base", "tree"]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("bench-compare: PASS: 2 benchmarks within +40%")
    assert "3 interleaved rounds" in out[0]


def test_compare_a_real_slowdown_fails_one_line_each(
    base_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [{A: 1.0, B: 10.0}] * 3
    runs = _sides(base_tree, base, [{A: 1.6, B: 10.0}, {A: 1.1, B: 10.0}, {A: 1.7, B: 10.0}])
    assert gate.main(["compare", "--rounds", "3"], runner=runs) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"REGRESSION {A}: +60.0% against the base (rounds: +60%, +10%, +70%)")
    assert out[1].startswith("bench-compare: FAIL: 1 of 2 benchmarks slower than +40%")
    assert len(out) == 2


def test_compare_one_noisy_round_of_three_passes(base_tree: Path) -> None:
    base = [{A: 1.0}] * 3
    runs = _sides(base_tree, base, [{A: 2.0}, {A: 1.1}, {A: 0.9}])
    assert gate.main(["compare", "--rounds", "3"], runner=runs) == 0


def test_compare_slows_only_the_tree_down(base_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_SLOWDOWN", "1.6")
    runs = _sides(base_tree, [{A: 1.0}], [{A: 1.0}])
    assert gate.main(["compare", "--rounds", "1"], runner=runs) == 0
    base_env, tree_env = runs.envs
    assert base_env["BENCH_SLOWDOWN"] == ""  # run_suite unsets it for the base
    assert "BENCH_SLOWDOWN" not in tree_env  # the tree keeps the caller's


def test_compare_refuses_a_run_of_the_wrong_build(
    base_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _sides(base_tree, [{A: 1.0}], [{A: 1.0}])
    runs.imports_tree = True
    assert gate.main(["compare", "--rounds", "1"], runner=runs) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench-compare: error: the base run imported events_audit from")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("rounds", ["0", "x", "21"])
def test_compare_bad_rounds_exit_2(
    base_tree: Path, rounds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate.main(["compare", "--rounds", rounds], runner=_sides(base_tree, [], [])) == 2
    assert "BENCH_ROUNDS" in capsys.readouterr().err


def test_compare_unknown_base_exits_2_before_any_build(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_build(commit: str) -> Path:
        raise AssertionError("built a base that does not exist")

    monkeypatch.setattr(gate, "build_base", no_build)
    assert gate.main(["compare", "--base", "no-such-rev-xyz"], runner=FakeRuns()) == 2
    err = capsys.readouterr().err
    assert err == (
        "bench-compare: error: BENCH_BASE='no-such-rev-xyz' is not a commit of this repository\n"
    )


def test_compare_says_which_side_failed_to_run(
    base_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def runner(targets: Sequence[str], pytest_args: Sequence[str], env: dict[str, str]):
        raise gate.GateError("the benchmark run failed (pytest exit 1): E   ImportError: x")

    assert gate.main(["compare", "--rounds", "1"], runner=runner) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench-compare: error: base build: the benchmark run failed")
    assert len(err.splitlines()) == 1
