"""README's commands, run as written: `callstream up` (what `make run` starts), then each
``$ command`` of "The first five minutes" and each ``curl`` of the quick start, in a shell,
against the stack's ports. Each must succeed and answer with every JSON field its README output
shows, so README cannot drift from what the commands do. The few commands a test cannot run
here are listed in ``RUN_ELSEWHERE`` with what runs them instead, and a new command in README
fails :func:`test_every_command_in_readme_is_run_by_a_test` until it is run or listed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from callstream.health import wait_http_ok
from callstream.kafka.broker import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## The first five minutes"
WORKER = "127.0.0.1:6066"  # the ports README shows, replaced by the test's own
INGRESS_URL = "http://127.0.0.1:8080/webhooks/omicall"
FIELD = re.compile(r'"([a-z_]+)":')
RUN_ELSEWHERE = {
    "make run": "`callstream up`, which it runs after installing, is started here",
    "make test": "CI runs it on every push (.ci/run)",
    "export KAFKA_BOOTSTRAP_SERVERS=kafka-1.internal:9092,kafka-2.internal:9092": (
        "an existing cluster: tests/conftest.py runs the suite on KAFKA_BOOTSTRAP_SERVERS"
    ),
    "callstream up": "started here and by tests/integration/test_up.py",
    **{
        f"callstream kafka {verb} --data-dir .cache/kafka-cluster": (
            "tests/conftest.py's kafka_cluster runs it on free ports and a temporary data dir "
            "(tests/integration/test_kafka_cluster.py)"
        )
        for verb in ("start --nodes 3 --port 19092", "status", "stop")
    },
    # SQL for analysts: 41 hours of calls with the graces raised, minutes to run as written.
    ".venv/bin/callstream simulate --calls 6000 --rate 0.04 --speed 0 --seed 16 "
    "--out truth.jsonl": (
        "tests/integration/test_simulated_pipeline.py posts 2,000 simulated calls with every "
        "fault on and checks the pipeline against their truth"
    ),
    ".venv/bin/callstream export --since 2026-12-05T00:00+07:00 --to duckdb calls.duckdb": (
        "tests/integration/export_support.py runs `callstream export --since <a local midnight> "
        "--to duckdb FILE` over that pipeline, then README's three queries, as written"
    ),
}


def shell_commands() -> list[tuple[str, str]]:
    """(command, the output its ``# {...}`` comment lines show) of README's ``sh`` blocks;
    a trailing ``# comment`` is no part of the command."""
    found: list[tuple[str, str]] = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text("utf-8"), re.DOTALL):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            if line.startswith("# "):
                if found:
                    found[-1] = (found[-1][0], found[-1][1] + line[2:])
                continue
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command:
                found.append((re.sub(r"\s+", " ", command), ""))
    return found


def console_commands_elsewhere() -> set[str]:
    """The ``$`` commands of README's console blocks outside "The first five minutes" (whose
    own run in :func:`test_the_first_five_minutes_work_as_written`)."""
    before, section = README.read_text("utf-8").split(SECTION, 1)
    after = section.split("\n## ", 1)[1]
    return {
        re.sub(r"\s+", " ", line[2:]).strip()
        for block in re.findall(r"```console\n(.*?)```", before + after, re.DOTALL)
        for line in block.splitlines()
        if line.startswith("$ ")
    }


def test_every_command_in_readme_is_run_by_a_test() -> None:
    runs_here = {command for command, _ in shell_commands() if command.startswith("curl ")}
    assert runs_here, "README has no curl in its sh blocks: the pattern is stale"
    commands = {command for command, _ in shell_commands()}
    assert commands - runs_here <= RUN_ELSEWHERE.keys(), sorted(commands - runs_here)
    elsewhere = console_commands_elsewhere()
    assert elsewhere, "README has no console block outside its first five minutes: stale"
    assert elsewhere <= RUN_ELSEWHERE.keys(), sorted(elsewhere - RUN_ELSEWHERE.keys())


def walkthrough() -> list[tuple[str, str]]:
    """(command, the output README shows) of each ``$`` line in the section, in order."""
    text = README.read_text("utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    steps = []
    for block in re.findall(r"```console\n(.*?)```", section, re.DOTALL):
        lines = block.splitlines()
        assert lines[0].startswith("$ "), f"a console block starts with its command: {block}"
        steps.append((lines[0][2:], "\n".join(lines[1:])))
    return steps


def test_the_section_has_the_steps_a_newcomer_needs() -> None:
    commands = [command for command, _ in walkthrough()]
    assert any("callstream simulate" in command for command in commands)
    assert any("/calls/live" in command for command in commands)
    assert any("/metrics/hotline/" in command for command in commands)
    assert "make run" in README.read_text("utf-8").split(SECTION, 1)[1].split("```console")[0]


def run(command: str, cwd: Path, env: dict[str, str], timeout_s: float) -> str:
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stderr[-2000:]}"
    return done.stdout


def assert_fields(command: str, shown: str, answer: str) -> None:
    missing = set(FIELD.findall(shown)) - set(FIELD.findall(answer))
    assert not missing, f"{command}: no {sorted(missing)} in {answer[:500]}"


def until_calls_in_progress(command: str, cwd: Path, env: dict[str, str]) -> str:
    """The live view's answer once it lists a call; raises after 60 s."""
    deadline = time.monotonic() + 60
    # not_ready (503) while the view still reads callstream.live-calls; then calls, or none yet
    while '"calls":[{' not in (answer := run(command, cwd, env, timeout_s=30)):
        assert time.monotonic() < deadline, f"{command}: no call in progress: {answer[:300]}"
        time.sleep(0.2)
    return answer


@pytest.mark.timeout(400)
def test_the_first_five_minutes_work_as_written(
    kafka_bootstrap: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    ingest_port, worker_port = free_port(), free_port()
    env = {
        **cli_env,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": f"walk{uuid.uuid4().hex[:6]}.",
        # where `up` keeps its token, and where the newcomer's commands find it
        "CALLSTREAM_KAFKA_DATA_DIR": str(tmp_path / "cache" / "kafka-data"),
    }
    env.pop("CALLSTREAM_WEBHOOK_TOKENS", None)
    env.pop("CALLSTREAM_WEBHOOK_TOKEN", None)
    venv_bin = Path(sys.executable).parent
    command = [sys.executable, "-m", "callstream", "up"]
    command += ["--ingest-port", str(ingest_port), "--worker-port", str(worker_port)]
    up = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_http_ok(f"http://127.0.0.1:{worker_port}/readyz", deadline_s=120)
        assert wait_http_ok(f"http://127.0.0.1:{ingest_port}/readyz", deadline_s=30)
        simulation: tuple[subprocess.Popen[str], str] | None = None
        for written, shown in walkthrough():
            actual = written.replace(".venv/bin/", f"{venv_bin}/")
            actual = actual.replace(WORKER, f"127.0.0.1:{worker_port}")
            if "callstream simulate" in actual:
                # README's next steps run "while it runs": so does this test
                url = INGRESS_URL.replace("8080", str(ingest_port))
                process = subprocess.Popen(
                    ["bash", "-c", f"{actual} --url {url}"],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                simulation = (process, shown)
                continue
            if "/calls/live" in actual:
                answer = until_calls_in_progress(actual, tmp_path, env)
            else:
                answer = run(actual, tmp_path, env, timeout_s=60)
            assert_fields(written, shown, answer)
            if simulation is not None and "/calls/live" in actual:
                process, shown_counts = simulation
                output, errors = process.communicate(timeout=300)
                assert process.returncode == 0, errors[-2000:]
                assert_fields("callstream simulate", shown_counts, output)
                simulation = None
        assert simulation is None, "README runs no /calls/live while the simulation runs"
        token_file = tmp_path / "cache" / "webhook-token"  # beside CALLSTREAM_KAFKA_DATA_DIR
        for written, shown in shell_commands():
            if written.startswith("curl "):
                actual = written.replace(".cache/webhook-token", str(token_file))
                actual = actual.replace("127.0.0.1:8080", f"127.0.0.1:{ingest_port}")
                answer = run(actual, README.parent, env, timeout_s=60)
                assert_fields(written, shown, answer)
    finally:
        up.send_signal(signal.SIGINT)
        _, up_errors = up.communicate(timeout=90)
    assert up.returncode == 0, up_errors[-2000:]
