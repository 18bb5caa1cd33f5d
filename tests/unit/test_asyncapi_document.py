"""docs/asyncapi.yaml through the AsyncAPI project's own validator, when Node.js is here.

The validator is @asyncapi/parser, the library `asyncapi validate` (the AsyncAPI CLI) runs,
pinned with its lockfile in tests/asyncapi/. The CLI itself is 1.5 GB and a minute to install
on a fresh machine; the parser is 54 MB and a few seconds (`npm ci`), then cached in
.cache/asyncapi-parser/<hash of the pins>/, so CI, which starts fresh, pays once per run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from callstream.schemas.export import ASYNCAPI_PATH
from tests.contract_support import REPO_ROOT

PINS = REPO_ROOT / "tests" / "asyncapi"
FILES = ("package.json", "package-lock.json", "validate.mjs")
NPM_CI_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def asyncapi_validator() -> Path:
    """The validate script, next to its installed packages."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed")
    digest = hashlib.sha256(b"".join((PINS / name).read_bytes() for name in FILES))
    home = REPO_ROOT / ".cache" / "asyncapi-parser" / digest.hexdigest()[:16]
    installed = home / "installed"  # written last: an interrupted install is redone
    if not installed.is_file():
        home.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(PINS / name, home / name)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=home,
            check=True,
            timeout=NPM_CI_TIMEOUT_S,
        )
        installed.touch()
    return home / "validate.mjs"


def _validate(script: Path, document: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(script), str(document)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_asyncapi_document_is_valid(asyncapi_validator: Path) -> None:
    result = _validate(asyncapi_validator, REPO_ROOT / ASYNCAPI_PATH)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_finds_a_broken_document(asyncapi_validator: Path, tmp_path: Path) -> None:
    document = yaml.safe_load((REPO_ROOT / ASYNCAPI_PATH).read_text("utf-8"))
    headers = document["components"]["messages"]["CallDetailRecord"]["headers"]
    headers["properties"]["callstream-kind"]["type"] = "text"  # no JSON type
    broken = tmp_path / "docs" / "asyncapi.yaml"
    broken.parent.mkdir()
    broken.write_text(yaml.safe_dump(document), "utf-8")
    (tmp_path / "schemas").symlink_to(REPO_ROOT / "schemas")  # the payloads' $refs
    result = _validate(asyncapi_validator, broken)
    assert result.returncode == 1
    assert "callstream-kind/type" in result.stdout
