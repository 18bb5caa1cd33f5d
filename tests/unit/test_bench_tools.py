"""`make bench` provides wrk, which bench.ingest needs, on a machine that lacks it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_WRK = REPO / "bench" / "install-wrk"


def _tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH with bash and env but no wrk, and an ``id`` that says root."""
    path = tmp_path / "bin"
    path.mkdir()
    for name in ("bash", "env"):
        real = shutil.which(name)
        assert real is not None
        (path / name).symlink_to(real)
    _tool(path, "id", "echo 0")
    return path


def _run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALL_WRK)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_missing_wrk_is_installed_from_debian_packages(bin_dir: Path, tmp_path: Path) -> None:
    calls = tmp_path / "apt-get.calls"
    chmod = shutil.which("chmod")
    # apt-get as on Debian: `install wrk` puts wrk on PATH.
    _tool(
        bin_dir,
        "apt-get",
        f'echo "$DEBIAN_FRONTEND $*" >> {calls}\n'
        f'case "$*" in *install*wrk*) printf "#!/bin/sh\\n" > {bin_dir}/wrk; '
        f"{chmod} +x {bin_dir}/wrk;; esac",
    )
    run = _run(bin_dir)
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == [" update -qq", "noninteractive install -y -qq wrk"]
    assert (bin_dir / "wrk").is_file()


def test_wrk_already_there_installs_nothing(bin_dir: Path, tmp_path: Path) -> None:
    _tool(bin_dir, "wrk", "exit 0")
    _tool(bin_dir, "apt-get", f"touch {tmp_path}/apt-get-ran")
    assert _run(bin_dir).returncode == 0
    assert not (tmp_path / "apt-get-ran").exists()


def test_without_apt_get_it_says_what_to_do(bin_dir: Path) -> None:
    run = _run(bin_dir)
    assert run.returncode == 1
    assert "wrk (the HTTP load generator of bench.ingest) is missing" in run.stderr
    assert "apt-get install wrk" in run.stderr


def test_make_bench_provides_wrk_before_the_benches_run() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine")
    dry_run = subprocess.run(
        [make, "-n", "bench"],
        cwd=REPO,
        env={**os.environ, "MAKEFLAGS": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "bench/install-wrk" in dry_run
    assert dry_run.index("bench/install-wrk") < dry_run.index("bench.ingest")
