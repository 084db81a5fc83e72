"""The benchmark regression gate behind ``make bench-check`` and ``make bench-save``.

Absolute times do not compare across machines, nor on one machine whose speed
drifts, so every benchmark is kept as a ratio: its pytest-benchmark median
divided by the median of a fixed calibration workload that bench/conftest.py
times right before and right after it.  ``save`` records those ratios (median
of 3 full passes) in bench/baseline/ratios.json; ``check`` runs the suite once
and fails when a ratio grew by more than the threshold.  A benchmark over the
threshold is measured again and fails only when it is over in 2 of up to 3
passes, so one burst of noise does not fail the gate, and a real slowdown does.

    python bench/gate.py check [--baseline PATH] [--fail 40%] [-- PYTEST_OPTIONS]
    python bench/gate.py save  [--baseline PATH] [-- PYTEST_OPTIONS]
    python bench/gate.py compare [--base REV] [--rounds 3] [--fail 40%] [-- PYTEST_OPTIONS]

``compare`` needs no recorded baseline and holds on any machine by
construction: it checks the base commit out in a git worktree under
.benchmarks/, builds its extensions there, and runs the working tree's
benchmarks against both builds in interleaved rounds (base, tree; tree, base;
...).  Per round it takes each benchmark's ratio tree / base (both already
divided by their calibration), and fails when the median over the rounds is
slower than the threshold.  BENCH_SLOWDOWN applies to the tree's runs only.

Output: one line per regression and one summary line; pytest's own output goes
to .benchmarks/gate.log.  Exit status: 0 pass, 1 regression, 2 bad input (a
missing or corrupt baseline, a bad threshold, a calibration mismatch, or a
benchmark run that failed), always with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = Path("bench/baseline/ratios.json")
LOG = Path(".benchmarks/gate.log")
FORMAT = "events-audit-bench-ratios/1"
DEFAULT_FAIL = "40%"
BASE_TREES = Path(".benchmarks")  # compare: base-<commit> worktrees, kept for the next run
DEFAULT_ROUNDS = 3
MAX_PASSES = 3  # check: a suspect is re-measured until 2 passes agree
SAVE_PASSES = 3  # save: the median of 3 passes, so one noisy pass does not skew the baseline


class GateError(Exception):
    """Bad input or a run that cannot be compared: one line, exit status 2."""


@dataclass(frozen=True)
class Baseline:
    calibration: str  # CALIBRATION_ID of bench/conftest.py when it was recorded
    python: str  # e.g. "CPython 3.11": only to explain a shift, not compared strictly
    ratios: dict[str, float]  # benchmark node id -> benchmark median / calibration median


@dataclass(frozen=True)
class Report:
    code: int  # 0 pass, 1 regression
    lines: list[str]  # one per regression, then the summary


def parse_threshold(text: str) -> float:
    """'40%', '40' or the old 'median:40%' -> 0.4."""
    value = text.strip()
    if value.startswith("median:"):
        value = value[len("median:") :]
    elif ":" in value:
        raise GateError(f"BENCH_FAIL={text!r}: only the median is compared; use e.g. 40%")
    try:
        percent = float(value.removesuffix("%"))
    except ValueError:
        raise GateError(f"BENCH_FAIL={text!r} is not a percentage such as 40%") from None
    if not 0 < percent < 10000:
        raise GateError(f"BENCH_FAIL={text!r}: the percentage must be above 0")
    return percent / 100


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf


def parse_baseline(text: str, where: str) -> Baseline:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise GateError(f"{where} is not valid JSON ({exc}); run `make bench-save`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GateError(f"{where} is not a {FORMAT} file (an old baseline?); run `make bench-save`")
    ratios = data.get("ratios")
    calibration = data.get("calibration")
    if not isinstance(ratios, dict) or not ratios or not isinstance(calibration, str):
        raise GateError(f"{where} has no ratios or no calibration id; run `make bench-save`")
    for name, ratio in ratios.items():
        if not _positive(ratio):
            raise GateError(f"{where}: the ratio of {name} is {ratio!r}, not a positive number")
    return Baseline(calibration, str(data.get("python", "")), dict(ratios))


def _show(path: Path) -> str:
    """A path as the user reads it: relative to the repository when it is inside."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def load_baseline(path: Path) -> Baseline:
    where = _show(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateError(f"no baseline at {where}; record one with `make bench-save`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError(f"cannot read the baseline {where}: {exc}") from None
    return parse_baseline(text, where)


def dump_baseline(baseline: Baseline) -> str:
    # Only what the gate needs: none of pytest-benchmark's machine info, paths or commit.
    data = {
        "format": FORMAT,
        "about": "benchmark median / calibration median (bench/conftest.py); make bench-save",
        "calibration": baseline.calibration,
        "python": baseline.python,
        "ratios": {name: float(f"{r:.5g}") for name, r in sorted(baseline.ratios.items())},
    }
    return json.dumps(data, indent=2) + "\n"


def python_id() -> str:
    return f"{platform.python_implementation()} {sys.version_info[0]}.{sys.version_info[1]}"


def ratios_from_run(run: Mapping[str, Any]) -> tuple[str, dict[str, float]]:
    """pytest-benchmark JSON -> (calibration id, {node id: median / calibration median})."""
    ids: set[str] = set()
    ratios: dict[str, float] = {}
    try:
        for bench in run["benchmarks"]:
            name = bench["fullname"]
            calibration = bench["extra_info"].get("calibration")
            if not calibration:
                raise GateError(f"{name} has no calibration (was bench/conftest.py loaded?)")
            ids.add(calibration["id"])
            ratios[name] = bench["stats"]["median"] / calibration["median"]
    except (KeyError, TypeError, ZeroDivisionError) as exc:
        raise GateError(f"unexpected pytest-benchmark output ({exc!r})") from None
    if not ratios:
        raise GateError("the run measured no benchmark")
    if len(ids) != 1:
        raise GateError(f"the run mixes calibration workloads {sorted(ids)}")
    return ids.pop(), ratios


def is_over(ratio: float, base: float, threshold: float) -> bool:
    return ratio > base * (1 + threshold)


def estimate(samples: Sequence[float]) -> float:
    """The lower median: 1 pass as is, 2 passes the better, 3 passes the median.

    It is over the threshold exactly when the majority of the passes was.
    """
    return sorted(samples)[(len(samples) - 1) // 2]


def undecided(samples: Sequence[float], base: float, threshold: float) -> bool:
    """Measure again? Only after a first pass over the threshold, until 2 passes agree."""
    over = [is_over(r, base, threshold) for r in samples]
    fails = sum(over)
    return over[0] and fails < 2 and len(over) - fails < 2 and len(over) < MAX_PASSES


def compare(
    baseline: Mapping[str, float], current: Mapping[str, float], threshold: float, note: str = ""
) -> Report:
    """Current ratios against the baseline's: a Report of regressions and a summary."""
    common = [name for name in current if name in baseline]
    if not common:
        raise GateError("no benchmark of this run is in the baseline; run `make bench-save`")
    limit = f"+{threshold * 100:.0f}%"
    changes = {name: current[name] / baseline[name] - 1 for name in common}
    failed = sorted(
        (n for n in common if is_over(current[n], baseline[n], threshold)),
        key=lambda n: -changes[n],
    )
    lines = [
        f"REGRESSION {n}: ratio {baseline[n]:.4g} -> {current[n]:.4g} "
        f"({changes[n] * 100:+.1f}% > {limit})"
        for n in failed
    ]
    extra = []
    new = [n for n in current if n not in baseline]
    missing = [n for n in baseline if n not in current]
    if new:
        extra.append(f"{len(new)} not in the baseline (make bench-save)")
    if missing:
        extra.append(f"{len(missing)} of the baseline not run")
    if note:
        extra.append(note)
    tail = f"; {'; '.join(extra)}" if extra else ""
    return verdict("check", lines, changes, limit, "of their baseline ratio", tail)


def verdict(
    command: str,
    regressions: list[str],
    changes: Mapping[str, float],
    limit: str,
    against: str,
    tail: str,
) -> Report:
    """The regression lines and one summary line (``changes``: name -> slowdown)."""
    if regressions:
        return Report(
            1,
            [
                *regressions,
                f"bench-{command}: FAIL: {len(regressions)} of {len(changes)} benchmarks "
                f"slower than {limit} {against}{tail}",
            ],
        )
    worst = max(changes, key=lambda n: changes[n])
    return Report(
        0,
        [
            f"bench-{command}: PASS: {len(changes)} benchmarks within {limit} {against} "
            f"(worst {changes[worst] * 100:+.1f}% {worst}){tail}"
        ],
    )


def _failure_reason(log_text: str) -> str:
    """The line of pytest's output that says what went wrong."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for prefix in ("ERROR: ", "FAILED ", "ERROR ", "E   "):
        for line in lines:
            if line.startswith(prefix):
                return line[:300]
    return lines[-1][:300] if lines else "no output"


_log_started = False  # the first run of a gate invocation starts a fresh LOG


def run_suite(
    targets: Sequence[str], pytest_args: Sequence[str], env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One pytest-benchmark run; its JSON (pytest's output is appended to LOG).

    ``env``: variables set (or, given as "", unset) for this run only."""
    global _log_started
    log = ROOT / LOG
    log.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *targets,
            *pytest_args,
            "--benchmark-only",
            f"--benchmark-json={out}",
            "-p",
            "no:cacheprovider",
        ]
        run_env = dict(os.environ)
        for name, value in (env or {}).items():
            if value:
                run_env[name] = value
            else:
                run_env.pop(name, None)
        proc = subprocess.run(
            command,
            cwd=ROOT,
            env=run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        shown = " ".join(f"{k}={v}" for k, v in (env or {}).items() if v)
        with log.open("a" if _log_started else "w", encoding="utf-8") as handle:
            handle.write(f"$ {shown} pytest {' '.join(command[3:])}\n{proc.stdout}\n")
        _log_started = True
        if proc.returncode == 5:
            raise GateError(f"no benchmark was collected; see {LOG}")
        if proc.returncode != 0:
            raise GateError(
                f"the benchmark run failed (pytest exit {proc.returncode}): "
                f"{_failure_reason(proc.stdout)}; see {LOG}"
            )
        try:
            return json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GateError(f"pytest-benchmark wrote no usable JSON ({exc}); see {LOG}") from None


Runner = Callable[..., dict[str, Any]]  # run_suite's signature


def _git(*args: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise GateError(f"git {' '.join(args)} failed: {why}")
    return proc.stdout.strip()


def resolve_commit(rev: str) -> str:
    if not shutil.which("git"):
        raise GateError("git is not installed: compare needs it to check the base out")
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except GateError:
        raise GateError(f"BENCH_BASE={rev!r} is not a commit of this repository") from None


def build_base(commit: str) -> Path:
    """The base commit checked out in a worktree with its extensions built
    in place (the same command as `pip install -e .` runs); kept and reused
    while .benchmarks/base-<commit>/.built is there."""
    tree = ROOT / BASE_TREES / f"base-{commit[:12]}"
    built = tree / ".built"
    if built.is_file() and built.read_text(encoding="utf-8").strip() == commit:
        return tree
    for old in (ROOT / BASE_TREES).glob("base-*"):  # an earlier base, or an interrupted build
        shutil.rmtree(old, ignore_errors=True)
    _git("worktree", "prune")
    _git("worktree", "add", "--detach", "--force", str(tree), commit)
    env = {k: v for k, v in os.environ.items() if k != "EVENTS_AUDIT_DEBUG"}
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log = ROOT / LOG
    log.parent.mkdir(exist_ok=True)
    log.write_text(f"$ (in {_show(tree)}) python setup.py build_ext --inplace\n{proc.stdout}\n")
    if proc.returncode != 0:
        raise GateError(
            f"building the base {commit[:12]} failed: {_failure_reason(proc.stdout)}; see {LOG}"
        )
    built.write_text(commit + "\n", encoding="utf-8")
    return tree


def packages_of(run: Mapping[str, Any]) -> set[str]:
    """Where the benchmarked run imported events_audit from (bench/conftest.py)."""
    return {
        str(bench.get("extra_info", {}).get("package", "")) for bench in run.get("benchmarks", [])
    }


def parse_rounds(text: str) -> int:
    try:
        rounds = int(text.strip())
    except ValueError:
        rounds = 0
    if not 1 <= rounds <= 20:
        raise GateError(f"BENCH_ROUNDS={text!r}: give a number of rounds from 1 to 20")
    return rounds


def side_by_side(
    base: str, rounds_text: str, fail: str, pytest_args: Sequence[str], runner: Runner
) -> Report:
    """The working tree's benchmarks against the base commit's build, interleaved."""
    threshold = parse_threshold(fail)
    rounds = parse_rounds(rounds_text)
    commit = resolve_commit(base)
    tree = build_base(commit)
    sides = {
        # BENCH_SLOWDOWN stands for a slower tree, never a slower base
        "base": {"PYTHONPATH": str(tree / "src"), "BENCH_SLOWDOWN": ""},
        "tree": {"PYTHONPATH": str(ROOT / "src")},
    }
    paired: dict[str, list[float]] = {}
    for number in range(rounds):
        order = ("base", "tree") if number % 2 == 0 else ("tree", "base")
        ratios: dict[str, dict[str, float]] = {}
        for side in order:
            try:
                run = runner(["bench/"], pytest_args, env=sides[side])
            except GateError as exc:  # e.g. a benchmark of the tree's that the base cannot run
                raise GateError(f"{side} build: {exc}") from None
            imported = packages_of(run)
            if imported != {str((Path(sides[side]["PYTHONPATH"]) / "events_audit").resolve())}:
                raise GateError(
                    f"the {side} run imported events_audit from {sorted(imported)}, "
                    f"not from {_show(Path(sides[side]['PYTHONPATH']))}"
                )
            ratios[side] = ratios_from_run(run)[1]
        for name, ratio in ratios["tree"].items():
            if name in ratios["base"]:
                paired.setdefault(name, []).append(ratio / ratios["base"][name])
    if not paired:
        raise GateError("no benchmark ran on both the base and the tree")
    changes = {name: statistics.median(values) - 1 for name, values in paired.items()}
    limit = f"+{threshold * 100:.0f}%"
    failed = sorted((n for n in changes if changes[n] > threshold), key=lambda n: -changes[n])
    what = f"base {commit[:12]}, {rounds} interleaved round{'s' if rounds > 1 else ''}"
    lines = [
        f"REGRESSION {n}: {changes[n] * 100:+.1f}% against the base "
        f"(rounds: {', '.join(f'{(v - 1) * 100:+.0f}%' for v in paired[n])}) > {limit}"
        for n in failed
    ]
    return verdict("compare", lines, changes, limit, "of the base", f"; {what}")


def check(baseline_path: Path, fail: str, pytest_args: Sequence[str], runner: Runner) -> Report:
    baseline = load_baseline(baseline_path)  # bad input fails before minutes of benchmarks
    threshold = parse_threshold(fail)
    samples: dict[str, list[float]] = {}
    targets: list[str] = ["bench/"]
    passes = 0
    while targets and passes < MAX_PASSES:
        passes += 1
        calibration, ratios = ratios_from_run(runner(targets, pytest_args))
        if calibration != baseline.calibration:
            raise GateError(
                f"the baseline was recorded with calibration {baseline.calibration!r}, "
                f"this tree uses {calibration!r}; run `make bench-save`"
            )
        # A re-run records only its suspects (extra paths in pytest_args may run more).
        wanted = ratios if passes == 1 else [n for n in targets if n in ratios]
        for name in wanted:
            samples.setdefault(name, []).append(ratios[name])
        targets = [
            name
            for name, values in samples.items()
            if name in baseline.ratios and undecided(values, baseline.ratios[name], threshold)
        ]
    current = {name: estimate(values) for name, values in samples.items()}
    note = f"{passes} passes" if passes > 1 else "1 pass"
    if baseline.python and baseline.python != python_id():
        note += f"; baseline from {baseline.python}, this is {python_id()}"
    return compare(baseline.ratios, current, threshold, note)


def save(baseline_path: Path, pytest_args: Sequence[str], runner: Runner) -> str:
    if os.environ.get("BENCH_SLOWDOWN", "").strip() not in ("", "1", "1.0", "1.00"):
        raise GateError("BENCH_SLOWDOWN is set: refusing to save a slowed-down baseline")
    samples: dict[str, list[float]] = {}
    calibrations: set[str] = set()
    for _ in range(SAVE_PASSES):
        calibration, ratios = ratios_from_run(runner(["bench/"], pytest_args))
        calibrations.add(calibration)
        for name, ratio in ratios.items():
            samples.setdefault(name, []).append(ratio)
    if len(calibrations) != 1:
        raise GateError(f"the passes used different calibrations {sorted(calibrations)}")
    ratios = {name: statistics.median(values) for name, values in samples.items()}
    baseline = Baseline(calibrations.pop(), python_id(), ratios)
    try:
        baseline_path.parent.mkdir(parents=True, exist_ok=True)
        baseline_path.write_text(dump_baseline(baseline), encoding="utf-8")
    except OSError as exc:
        raise GateError(f"cannot write {_show(baseline_path)}: {exc}") from None
    return (
        f"bench-save: {len(ratios)} ratios to {baseline.calibration} "
        f"(median of {SAVE_PASSES} passes) written to {_show(baseline_path)}"
    )


def main(argv: Sequence[str] | None = None, runner: Runner = run_suite) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="-- PYTEST_OPTIONS: passed to pytest"
    )
    parser.add_argument("command", choices=["check", "save", "compare"])
    parser.add_argument("--baseline", type=Path, default=ROOT / DEFAULT_BASELINE)
    parser.add_argument("--base", default=os.environ.get("BENCH_BASE") or "HEAD")
    parser.add_argument("--rounds", default=os.environ.get("BENCH_ROUNDS") or str(DEFAULT_ROUNDS))
    parser.add_argument("--fail", default=os.environ.get("BENCH_FAIL") or DEFAULT_FAIL)
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" goes to pytest as is (argparse would take "-k" for its own).
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.pytest_args = argv[split + 1 :]
    try:
        if args.command == "save":
            print(save(args.baseline, args.pytest_args, runner))
            return 0
        if args.command == "compare":
            report = side_by_side(args.base, args.rounds, args.fail, args.pytest_args, runner)
        else:
            report = check(args.baseline, args.fail, args.pytest_args, runner)
    except GateError as exc:
        print(f"bench-{args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bench-{args.command}: interrupted", file=sys.stderr)
        return 130
    print("\n".join(report.lines))
    return report.code


if __name__ == "__main__":
    sys.exit(main())
