#!/usr/bin/env python3
# License: MIT
"""Run the benchmark scenarios against this library and PyPI frequenz-dispatch 1.0.4.

Usage: `python benchmarks/compare.py [--quick] [--only NAME...]`

* Creates `benchmarks/.reference-venv` once (reused afterwards) with
  `pip install frequenz-dispatch==1.0.4`, which brings its own SDK and client.
* Runs every scenario of `benchmarks/scenarios.py` in a subprocess in both
  environments, each with a time limit ("timeout" is reported, nothing hangs).
* Prints a table (ours, reference, reference/ours, target) and writes the raw
  results to `benchmarks/results/latest.json`.

See `benchmarks/README.md` for what each scenario measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCENARIOS = BENCH / "scenarios.py"
REF_VENV = BENCH / ".reference-venv"
REF_VERSION = "1.0.4"
RESULTS = BENCH / "results" / "latest.json"

ENVS = ("ours", "reference")


# --------------------------------------------------------------------------- envs


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ours_python() -> str:
    candidate = venv_python(ROOT / ".venv")
    return str(candidate) if candidate.exists() else sys.executable


def installed_version(python: Path) -> str | None:
    try:
        proc = subprocess.run(
            [
                str(python),
                "-I",
                "-c",
                "import importlib.metadata as m; print(m.version('frequenz-dispatch'))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def ensure_reference_venv() -> tuple[str | None, str]:
    """Return (python, note): create the reference venv unless it is already fine."""
    python = venv_python(REF_VENV)
    if python.exists() and installed_version(python) == REF_VERSION:
        return str(python), f"reused {REF_VENV}"
    log(f"creating {REF_VENV} with frequenz-dispatch=={REF_VERSION} ...")
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(REF_VENV)],
            check=True,
            timeout=300,
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"frequenz-dispatch=={REF_VERSION}",
            ],
            check=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not create the reference venv: {exc}"
    version = installed_version(python)
    if version != REF_VERSION:
        return None, f"reference venv has frequenz-dispatch {version!r}"
    return str(python), f"created {REF_VENV}"


# --------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Run:
    scenario: str
    size: int | None
    env: str
    status: str = "pending"  # ok | error | timeout | skipped | wrong-library | n/a
    note: str = ""
    elapsed_s: float | None = None
    data: dict[str, Any] | None = None
    stderr_tail: list[str] = dataclasses.field(default_factory=list)
    command: list[str] = dataclasses.field(default_factory=list)

    @property
    def result(self) -> dict[str, Any]:
        result = self.data.get("result") if self.data else None
        return result if isinstance(result, dict) else {}


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def execute(run: Run, python: str, extra: list[str], timeout: float) -> None:
    """Run one scenario in a subprocess and fill in `run`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [python]
    if run.env == "ours":
        # Our sources first, whatever is installed in the interpreter.
        env["PYTHONPATH"] = str(ROOT / "src")
        cwd = str(ROOT)
    else:
        # Isolated mode: no PYTHONPATH, no user site, no script/cwd on sys.path,
        # so only the reference venv's own frequenz.dispatch can be imported.
        command.append("-I")
        cwd = tempfile.gettempdir()
    command += [str(SCENARIOS), run.scenario, "--json"]
    if run.size is not None:
        command += ["--size", str(run.size)]
    command += extra
    run.command = command
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        run.elapsed_s = round(time.perf_counter() - started, 1)
        run.status = "timeout"
        run.note = f"timeout ({timeout:.0f} s)"
        stderr = (
            exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        )
        run.stderr_tail = stderr.splitlines()[-10:]
        return
    run.elapsed_s = round(time.perf_counter() - started, 1)
    run.stderr_tail = proc.stderr.splitlines()[-15:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        run.data = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        run.data = None
    if run.data is None:
        run.status = "error"
        tail = run.stderr_tail[-1] if run.stderr_tail else f"exit {proc.returncode}"
        run.note = f"error: {tail}"
        return
    if run.data.get("error"):
        run.status = "error"
        run.note = f"error: {run.data['error']}"
        return
    library_file = str((run.data.get("library") or {}).get("file") or "")
    expected_dir = REF_VENV if run.env == "reference" else ROOT / "src"
    if not library_file.startswith(str(expected_dir.resolve())):
        run.status = "wrong-library"
        run.note = f"wrong library imported: {library_file}"
        return
    run.status = "ok"


# --------------------------------------------------------------------------- plan


def plan(quick: bool, only: set[str] | None) -> list[tuple[str, int | None]]:
    sizes_sync = [1_000, 10_000] + ([] if quick else [100_000])
    sizes_idle = [1_000, 10_000] + ([] if quick else [100_000])
    steps: list[tuple[str, int | None]] = [("next_run", None), ("lateness", 200)]
    steps += [("sync", n) for n in sizes_sync]
    steps += [("idle", n) for n in sizes_idle]
    steps += [("updates", 10_000), ("burst", 500), ("burst", 5_000)]
    return [s for s in steps if only is None or s[0] in only]


def skip_reason(
    scenario: str, size: int | None, env: str, runs: list[Run], quick: bool
) -> str | None:
    """Decide whether a run is pointless given earlier results."""

    def sync_run(e: str, n: int) -> Run | None:
        for r in runs:
            if r.scenario == "sync" and r.size == n and r.env == e:
                return r
        return None

    if env == "reference" and scenario in {"sync", "idle"} and size is not None:
        if scenario == "idle" and size >= 100_000:
            return "not run for the reference at 100,000"
        for r in runs:
            if (
                r.scenario == "sync"
                and r.env == "reference"
                and r.size is not None
                and r.status in {"timeout", "error"}
                and (r.size < size or (scenario == "idle" and r.size <= size))
            ):
                return f"skipped: sync {r.status} at {r.size:,}"
    if env == "ours" and scenario == "idle" and size is not None and size >= 100_000:
        synced = sync_run("ours", size)
        if synced is None or synced.status != "ok":
            return "skipped: no successful sync at this size"
        took = synced.result.get("start_to_all_running_s")
        if not isinstance(took, (int, float)) or took > 30:
            return f"skipped: sync took {took} s (> 30 s)"
    return None


# --------------------------------------------------------------------------- table


@dataclasses.dataclass
class Figure:
    label: str
    path: str
    unit: str = ""
    lower_is_better: bool | None = True
    total: str | None = None  # path of the denominator: shown as "a/b"
    target: tuple[str, float] | None = None
    target_sizes: tuple[int, ...] | None = None  # None: at every size
    ours_only: bool = False


def figures(scenario: str) -> list[Figure]:
    if scenario == "sync":
        return [
            Figure(
                "init: start() -> wait_for_initialization()",
                "init_s",
                "s",
                target=("<", 5.0),
                target_sizes=(100_000,),
            ),
            Figure("running receiver: created after init", "receiver_create_s", "s"),
            Figure(
                "running receiver: all running delivered (since init)",
                "running_delivered_s",
                "s",
            ),
            Figure("start() -> all running delivered", "start_to_all_running_s", "s"),
            Figure(
                "running dispatches delivered",
                "running_delivered",
                total="running_expected",
                lower_is_better=None,
            ),
            Figure("peak RSS delta", "peak_rss_delta_mib", "MiB"),
            Figure(
                "(stock FakeClient.list() alone, excluded above)",
                "fake_list_s",
                "s",
                lower_is_better=None,
                ours_only=True,
            ),
        ]
    if scenario == "next_run":
        rows = []
        for case in (
            "minutely_1d",
            "minutely_30d",
            "minutely_1y",
            "minutely_byhours_30d",
        ):
            rows.append(
                Figure(
                    f"Dispatch(d).next_run, {case}",
                    f"{case}.next_run_us",
                    "us",
                    target=("<", 50.0),
                )
            )
            if "by" not in case:
                rows.append(
                    Figure(
                        f"  result correct, {case}",
                        f"{case}.correct",
                        lower_is_better=None,
                    )
                )
        return rows
    if scenario == "idle":
        return [
            Figure(
                "idle CPU (5 s window)",
                "cpu_pct",
                "%",
                target=("<", 1.0),
                target_sizes=(100_000,),
            ),
            Figure("event-loop lag p50 (10 ms probe)", "loop_lag_ms.p50", "ms"),
            Figure("event-loop lag p99", "loop_lag_ms.p99", "ms"),
            Figure("event-loop lag max", "loop_lag_ms.max", "ms"),
            Figure(
                "messages while idle (expect 0)",
                "messages_during_idle",
                lower_is_better=None,
            ),
            Figure("(sync before idling)", "init_s", "s"),
        ]
    if scenario == "updates":
        return [
            Figure(
                "one at a time: update returned -> consumer, p50",
                "sequential.after_return_ms.p50",
                "ms",
                target=("<", 0.2),
            ),
            Figure(
                "one at a time: update returned -> consumer, p99",
                "sequential.after_return_ms.p99",
                "ms",
            ),
            Figure(
                "one at a time: update called -> consumer, p50",
                "sequential.from_call_ms.p50",
                "ms",
            ),
            Figure(
                "one at a time: lost (2 s wait each)",
                "sequential.lost",
                lower_is_better=None,
            ),
            Figure(
                "unpaced: delivered",
                "unpaced.delivered",
                total="unpaced.updates",
                lower_is_better=None,
            ),
            Figure(
                "unpaced: update called -> consumer, p50",
                "unpaced.from_call_ms.p50",
                "ms",
            ),
            Figure(
                "unpaced: update called -> consumer, p99",
                "unpaced.from_call_ms.p99",
                "ms",
            ),
            Figure(
                "unpaced: last delivery after first call", "unpaced.all_handled_s", "s"
            ),
            Figure(
                "(fake+client alone: returned -> raw stream, p50)",
                "baseline_fake_client.after_return_ms.p50",
                "ms",
                lower_is_better=None,
            ),
            Figure(
                "(fake+client alone: update call, p50)",
                "baseline_fake_client.call_ms.p50",
                "ms",
                lower_is_better=None,
            ),
        ]
    if scenario == "burst":
        return [
            Figure(
                "slow consumer (1 ms/msg): starts delivered",
                "slow_consumer.starts_delivered",
                total="slow_consumer.expected",
                lower_is_better=None,
                target=("=", 1.0),
                target_sizes=(500,),
            ),
            Figure(
                "slow consumer: stops delivered",
                "slow_consumer.stops_delivered",
                total="slow_consumer.expected",
                lower_is_better=None,
                target=("=", 1.0),
                target_sizes=(500,),
            ),
            Figure(
                "fast consumer: starts delivered",
                "fast_consumer.starts_delivered",
                total="fast_consumer.expected",
                lower_is_better=None,
                target=("=", 1.0),
                target_sizes=(500,),
            ),
            Figure(
                "fast consumer: stops delivered",
                "fast_consumer.stops_delivered",
                total="fast_consumer.expected",
                lower_is_better=None,
                target=("=", 1.0),
                target_sizes=(500,),
            ),
            Figure(
                "fast consumer: start lateness p50",
                "fast_consumer.start_lateness_ms.p50",
                "ms",
            ),
            Figure(
                "fast consumer: start lateness p99",
                "fast_consumer.start_lateness_ms.p99",
                "ms",
                target=("<", 50.0),
                target_sizes=(500,),
            ),
            Figure(
                "fast consumer: start lateness max",
                "fast_consumer.start_lateness_ms.max",
                "ms",
            ),
            Figure(
                "slow consumer: start lateness p50 (of delivered)",
                "slow_consumer.start_lateness_ms.p50",
                "ms",
                lower_is_better=None,  # a library that drops messages looks better
            ),
            Figure(
                "slow consumer: start lateness p99 (of delivered)",
                "slow_consumer.start_lateness_ms.p99",
                "ms",
                lower_is_better=None,
            ),
            Figure(
                "creations acknowledged (Created events)",
                "lifecycle_created_seen",
                total="created",
                lower_is_better=None,
            ),
            Figure(
                "creation overran the start instant (expect no)",
                "creation_overran_start",
                lower_is_better=None,
            ),
        ]
    if scenario == "lateness":
        return [
            Figure(
                "starts delivered",
                "starts_delivered",
                total="expected",
                lower_is_better=None,
            ),
            Figure(
                "stops delivered",
                "stops_delivered",
                total="expected",
                lower_is_better=None,
            ),
            Figure("start lateness p50", "start_lateness_ms.p50", "ms"),
            Figure(
                "start lateness p99", "start_lateness_ms.p99", "ms", target=("<", 2.0)
            ),
            Figure("start lateness max", "start_lateness_ms.max", "ms"),
            Figure("stop lateness p50", "stop_lateness_ms.p50", "ms"),
            Figure(
                "stop lateness p99", "stop_lateness_ms.p99", "ms", target=("<", 2.0)
            ),
            Figure("stop lateness max", "stop_lateness_ms.max", "ms"),
            Figure(
                "(bare asyncio.sleep(10 ms) oversleep, no library, p50)",
                "loop_oversleep_without_library_ms.p50",
                "ms",
                lower_is_better=None,
            ),
            Figure(
                "(bare asyncio.sleep(10 ms) oversleep, no library, p99)",
                "loop_oversleep_without_library_ms.p99",
                "ms",
                lower_is_better=None,
            ),
        ]
    return []


def lookup(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def cell(run: Run | None, figure: Figure, first_row: bool) -> tuple[str, Any]:
    """Text and raw value of one figure for one run."""
    if run is None:
        return "—", None
    if run.status != "ok":
        if not first_row:
            return "", None  # said once, on the first row
        return (run.note or run.status)[:60], None
    if figure.ours_only and run.env != "ours":
        return "", None
    value = lookup(run.result, figure.path)
    if value is None:
        return "n/a", None
    if isinstance(value, bool):
        return ("yes" if value else "no"), value
    if figure.total is not None:
        total = lookup(run.result, figure.total)
        if (
            isinstance(total, (int, float))
            and isinstance(value, (int, float))
            and total
        ):
            return f"{value:,}/{total:,}", value / total
        return f"{value}", None
    if isinstance(value, (int, float)):
        unit = f" {figure.unit}" if figure.unit else ""
        return f"{number(float(value))}{unit}", float(value)
    return str(value)[:40], None


def ratio(figure: Figure, ours: Any, ref: Any) -> str:
    if figure.lower_is_better is None or figure.total is not None:
        return ""
    if isinstance(ours, bool) or isinstance(ref, bool):
        return ""
    if not isinstance(ours, float) or not isinstance(ref, float):
        return ""
    if ours <= 0 or ref <= 0:
        return ""
    value = ref / ours if figure.lower_is_better else ours / ref
    return f"{number(value)}x"


def target_text(figure: Figure, size: int | None, ours: Any) -> str:
    if figure.target is None:
        return ""
    if figure.target_sizes is not None and size not in figure.target_sizes:
        return ""
    op, bound = figure.target
    if op == "=":
        text = "100 %"
        met = isinstance(ours, float) and ours >= bound
    else:
        unit = f" {figure.unit}" if figure.unit else ""
        text = f"{op} {number(bound)}{unit}"
        met = isinstance(ours, float) and ours < bound
    if ours is None:
        return f"{text} (n/a)"
    return f"{text} {'met' if met else 'MISSED'}"


def drops(run: Run | None) -> str:
    if run is None or run.data is None:
        return "—"
    logs = run.data.get("logs") or {}
    fake = logs.get("dropped_in_fake_service", 0)
    client = logs.get("dropped_in_client_stream_receivers", 0)
    lib = logs.get("dropped_in_library_channels", 0)
    return f"{fake}/{client}/{lib}"


def build_table(
    runs: list[Run], steps: list[tuple[str, int | None]]
) -> list[list[str]]:
    rows: list[list[str]] = []
    for scenario, size in steps:
        by_env = {r.env: r for r in runs if r.scenario == scenario and r.size == size}
        name = scenario if size is None else f"{scenario} {size:,}"
        first = True
        for figure in figures(scenario):
            ours_text, ours_value = cell(by_env.get("ours"), figure, first)
            ref_text, ref_value = cell(by_env.get("reference"), figure, first)
            rows.append(
                [
                    name if first else "",
                    figure.label,
                    ours_text,
                    ref_text,
                    ratio(figure, ours_value, ref_value),
                    target_text(figure, size, ours_value),
                ]
            )
            first = False
            if all(r.status != "ok" for r in by_env.values()):
                break  # nothing more to show
        if scenario in {"updates", "burst", "lateness", "sync", "idle"}:
            rows.append(
                [
                    "",
                    "dropped msgs fake/client-stream/library",
                    drops(by_env.get("ours")),
                    drops(by_env.get("reference")),
                    "",
                    "",
                ]
            )
        rows.append([])
    return rows


def render(rows: list[list[str]]) -> str:
    header = [
        "scenario",
        "figure",
        "ours",
        f"reference {REF_VERSION}",
        "ref/ours",
        "target",
    ]
    widths = [len(h) for h in header]
    for row in rows:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    for row in rows:
        if not row:
            out.append("")
            continue
        out.append(
            "  ".join(t.ljust(w) for t, w in zip(row, widths, strict=True)).rstrip()
        )
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--quick", action="store_true", help="stop at 10,000 dispatches"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only these scenarios"
    )
    parser.add_argument("--env", choices=("both", *ENVS), default="both")
    parser.add_argument("--ref-timeout", type=float, default=120.0, help="s per run")
    parser.add_argument("--ours-timeout", type=float, default=400.0, help="s per run")
    args = parser.parse_args(argv)

    known = {"sync", "next_run", "idle", "updates", "burst", "lateness"}
    only = set(args.only) if args.only else None
    if only and not only <= known:
        parser.error(f"unknown scenario(s): {', '.join(sorted(only - known))}")
    envs = ENVS if args.env == "both" else (args.env,)
    pythons: dict[str, str | None] = {"ours": ours_python(), "reference": None}
    notes: dict[str, str] = {
        "ours": f"{pythons['ours']} with PYTHONPATH={ROOT / 'src'}"
    }
    if "reference" in envs:
        pythons["reference"], notes["reference"] = ensure_reference_venv()

    steps = plan(args.quick, only)
    runs: list[Run] = []
    t0 = time.perf_counter()
    total = len(steps) * len(envs)
    for scenario, size in steps:
        for env in envs:
            run = Run(scenario, size, env)
            runs.append(run)
            shown = "" if size is None else f" {size:,}"
            label = f"[{len(runs)}/{total}] {scenario}{shown} {env}"
            reason = skip_reason(scenario, size, env, runs[:-1], args.quick)
            python = pythons.get(env)
            if python is None:
                run.status, run.note = "n/a", notes.get(env, "unavailable")[:60]
            elif reason is not None:
                run.status, run.note = "skipped", reason
            else:
                extra = ["--baseline"] if (scenario == "sync" and env == "ours") else []
                timeout = args.ours_timeout
                if env == "reference":
                    # updates must sync 10,000 first, which alone takes the
                    # reference over a minute: give it twice the limit.
                    factor = 2.0 if scenario == "updates" else 1.0
                    timeout = args.ref_timeout * factor
                log(f"{label} ...")
                execute(run, python, extra, timeout)
            took = "" if run.elapsed_s is None else f" ({run.elapsed_s} s)"
            log(f"{label}: {run.note or run.status}{took}")

    rows = build_table(runs, steps)
    table = render(rows)
    libraries = {}
    for env in envs:
        for r in runs:
            if r.env == env and r.data and r.data.get("library"):
                libraries[env] = r.data["library"]
                break
    print()
    for env in envs:
        lib = libraries.get(env) or {}
        print(f"{env:9}: frequenz-dispatch {lib.get('version')} from {lib.get('file')}")
    loads = [
        r.data["host"].get("loadavg_1m_before", 0.0)
        for r in runs
        if r.data and isinstance(r.data.get("host"), dict)
    ]
    busiest = max(loads, default=0.0)
    print(
        f"host     : {os.cpu_count()} CPUs; total {time.perf_counter() - t0:.0f} s;"
        f" 1-min load average before runs: up to {busiest:.1f}"
        + (
            " (other processes competed for the CPUs: timings are pessimistic)"
            if busiest >= 1.0
            else ""
        )
    )
    print()
    print(table)
    print(
        "\nref/ours: how many times longer the reference takes (>1: ours is faster)."
        "\ndropped: channel overflow warnings, by where the buffer was: the fake"
        " service's own stream buffer / the client stream receiver the library"
        " created / the library's own channels. 'fake' must stay 0 for a valid run."
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "written": datetime.now(timezone.utc).isoformat(),
        "quick": args.quick,
        "only": sorted(only) if only else None,
        "environments": {
            env: {"python": pythons.get(env), "note": notes.get(env)} for env in envs
        },
        "libraries": libraries,
        "total_s": round(time.perf_counter() - t0, 1),
        "runs": [dataclasses.asdict(r) for r in runs],
        "table": table.splitlines(),
    }
    RESULTS.write_text(
        json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8"
    )
    print(f"\nraw results: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
