"""`callstream simulate` as a user runs it, against a scripted ingress: the same --seed and
--start post byte-identical bodies, its options are checked, and Ctrl-C leaves the counts so
far, exit 130 and a truth file of whole lines."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
import pytest

from callstream.cli import build_parser, main
from tests.unit.scripted_ingress import TOKEN, always, interrupted, scripted_ingress

START = "1796569795"


async def simulate(*args: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "callstream", "simulate", "--token", TOKEN, *args),
        env={**os.environ, "CI": "true"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out, err


async def test_the_same_seed_and_start_post_byte_identical_bodies(tmp_path: Path) -> None:
    runs = []
    for run in range(2):
        async with scripted_ingress(always(200)) as ingress:
            truth = tmp_path / f"truth{run}.jsonl"
            code, out, err = await simulate(
                *("--url", ingress.url, "--calls", "40", "--rate", "5", "--seed", "3"),
                *("--start", START, "--speed", "0", "--concurrency", "1", "--out", str(truth)),
            )
            assert code == 0, err.decode()
            runs.append((ingress.bodies(), truth.read_bytes()))
    assert runs[0] == runs[1]
    assert orjson.loads(out)["acked"] == len(runs[0][0])


def test_calls_and_duration_are_one_or_the_other(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["simulate", "--duration", "60", "--rate", "2"])
    assert (args.calls, args.duration) == (None, 60.0)
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["simulate", "--calls", "5", "--duration", "60"])
    assert exit_.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad", [["--calls", "-1"], ["--rate", "0"], ["--agents", "1"], ["--duplicate-rate", "2"]]
)
def test_impossible_options_exit_2(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--token", TOKEN, "--url", "http://127.0.0.1:9/x", *bad]) == 2
    assert "simulate: error" in capsys.readouterr().err


async def test_ctrl_c_prints_the_counts_so_far_exits_130_and_keeps_whole_truth_lines(
    tmp_path: Path,
) -> None:
    truth = tmp_path / "truth.jsonl"
    code, out, err = await interrupted(
        *("simulate", "--token", TOKEN, "--calls", "1000", "--speed", "0"),
        *("--concurrency", "2", "--out", str(truth)),
    )
    assert code == 130, err.decode()
    counts = orjson.loads(out)
    assert (counts["sent"], counts["acked"], counts["interrupted"]) == (2, 0, True)
    assert b"simulate: interrupted" in err
    assert TOKEN.encode() not in out + err
    lines = truth.read_bytes().splitlines()
    assert len(lines) == counts["calls"] > 0
    assert all(orjson.loads(line)["call_id"] for line in lines)
