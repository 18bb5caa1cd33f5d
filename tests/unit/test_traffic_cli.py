"""`callstream replay`'s token, URL, exit codes and output, its progress without a terminal,
and Ctrl-C: the counts so far, then exit 130."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from callstream.cli import build_parser, main
from callstream.kafka.broker import free_port
from callstream.traffic import progressbar
from callstream.traffic.poster import PostSummary
from callstream.traffic.progressbar import ProgressBar, ReadBar, live_wanted
from callstream.traffic.replay_cli import replay_code
from callstream.traffic.target import TargetError, checked_url, resolve_token
from tests.unit.scripted_ingress import TOKEN, interrupted


@pytest.fixture
def no_token_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment without a token, whose `callstream up` token file would be in tmp."""
    for name in ("CALLSTREAM_WEBHOOK_TOKEN", "CALLSTREAM_WEBHOOK_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CALLSTREAM_KAFKA_DATA_DIR", str(tmp_path / "kafka-data"))
    return {"CALLSTREAM_KAFKA_DATA_DIR": str(tmp_path / "kafka-data")}


def test_the_token_comes_from_the_option_the_env_or_the_file_up_writes(
    tmp_path: Path, no_token_env: dict[str, str]
) -> None:
    env = dict(no_token_env)
    with pytest.raises(TargetError, match=str(tmp_path / "webhook-token")):
        resolve_token(None, env)
    (tmp_path / "webhook-token").write_text("from-the-file\n")
    assert resolve_token(None, env) == "from-the-file"
    env["CALLSTREAM_WEBHOOK_TOKENS"] = "first-of-the-ingress, second"
    assert resolve_token(None, env) == "first-of-the-ingress"
    env["CALLSTREAM_WEBHOOK_TOKEN"] = "from-the-env"  # noqa: S105 - a test token
    assert resolve_token(None, env) == "from-the-env"
    assert resolve_token("given", env) == "given"


@pytest.mark.parametrize("url", ["127.0.0.1:8080/webhooks/omicall", "ftp://host/x", "http://"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(TargetError, match="not an http"):
        checked_url(url)


def test_replay_without_a_token_says_so_and_exits_2(
    tmp_path: Path, no_token_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "calls.jsonl"
    recording.write_text("{}\n")
    assert main(["replay", str(recording)]) == 2
    assert "no webhook token" in capsys.readouterr().err


def test_the_contract_verbs_parse() -> None:
    args = build_parser().parse_args(["replay", "f.jsonl", "--url", "http://h/w", "--speed", "2"])
    assert (args.speed, args.concurrency, args.token) == (2.0, 16, None)
    args = build_parser().parse_args(
        ["capture", "--out", "o", "--since", "2025-01-31T08:00:00+07:00", "--until", "5"]
    )
    assert (args.topic, args.since, args.until) == (
        "omicall.call-events,omicall.cdrs",
        1738285200000,
        5,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["capture", "--out", "o", "--since", "yesterday"])


@pytest.mark.parametrize(
    ("summary", "skipped", "code"),
    [
        (PostSummary(sent=3, acked=3), 0, 0),
        (PostSummary(sent=3, acked=3), 1, 1),
        (PostSummary(sent=3, acked=2, refused=1), 0, 1),
        (PostSummary(sent=3, acked=2, failed=1), 0, 1),
        (PostSummary(sent=3, acked=3, interrupted=True), 0, 130),
    ],
)
def test_replay_exit_codes(summary: PostSummary, skipped: int, code: int) -> None:
    assert replay_code(summary, skipped) == code


def test_without_a_terminal_progress_is_plain_lines_and_a_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not live_wanted({"CI": "true"})
    monkeypatch.setattr(progressbar, "PLAIN_INTERVAL_S", 0.0)
    summary = PostSummary(sent=5, acked=4, refused=1, elapsed_s=2.0)
    summary.by_status.update({200: 4, 400: 1})
    with ProgressBar("replay", live=False) as bar:
        bar.update(summary)
    bar.finish(summary, {"skipped lines": 2})
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "callstream: replay: sent 5, acked 4, refused 1, retried 0, failed 0, 2.0/s" in err
    for row in ("skipped lines", "HTTP 400", "2.0 acked/s"):
        assert row in err


def test_a_read_without_a_terminal_says_its_size_then_plain_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progressbar, "PLAIN_INTERVAL_S", 0.0)
    with ReadBar("export", live=False) as bar:
        bar.begin(120, 3, 12)
        bar.advance(60)
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert err.splitlines() == [
        "callstream: export: 120 records in 3 of 12 partitions",
        "callstream: export: 60 of 120 records read",
    ]


async def test_ctrl_c_prints_the_counts_so_far_and_exits_130(tmp_path: Path) -> None:
    recording = tmp_path / "calls.jsonl"
    recording.write_bytes(b"".join(b'{"n": %d}\n' % n for n in range(100)))
    code, out, err = await interrupted(
        "replay", str(recording), "--token", TOKEN, "--concurrency", "2"
    )
    assert code == 130, err.decode()
    counts = orjson.loads(out)
    assert (counts["sent"], counts["acked"], counts["interrupted"]) == (2, 0, True)
    assert b"replay: interrupted" in err
    assert TOKEN.encode() not in out + err


@pytest.mark.parametrize("verb", ["simulate", "replay"])
def test_without_an_ingress_listening_it_says_so_at_once_and_exits_2(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not every body retried for seconds into "failed": one line naming what to start.
    recording = tmp_path / "calls.jsonl"
    recording.write_text("{}\n")
    port = free_port()  # nothing listens there
    args = ["--url", f"http://127.0.0.1:{port}/webhooks/omicall", "--token", "t" * 20]
    argv = [verb, *([str(recording)] if verb == "replay" else ["--calls", "3"]), *args]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"cannot connect to 127.0.0.1:{port}" in error
    assert "t" * 20 not in error
