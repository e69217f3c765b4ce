"""Shared fixtures for vmseal's integration tests.

Tests run under CTest, which sets VMSEAL_BUILD_DIR to the build tree being
tested (so the asan preset's tests drive the sanitized binaries). Run one
file by hand with:

    VMSEAL_BUILD_DIR=build/dev /usr/bin/python3 -m pytest tests/integration/test_x.py
"""
import os
import pathlib

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("VMSEAL_SOURCE_DIR",
                                         pathlib.Path(__file__).resolve().parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("VMSEAL_BUILD_DIR", SOURCE_DIR / "build" / "dev"))


def _find(name: str, sub: str) -> pathlib.Path:
    path = BUILD_DIR / sub / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: build first (make, or cmake --build --preset dev)")
    return path


@pytest.fixture(scope="session")
def helper():
    """helper("atomic_writer") -> path of a test helper program."""
    return lambda name: _find(name, "helpers")


@pytest.fixture(scope="session")
def program():
    """program("vmseal-kms") -> path of one of vmseal's programs."""
    return lambda name: _find(name, "bin")


# --- vmseal-kms (tests/integration/kms.py) ---------------------------------

@pytest.fixture(scope="session")
def kms_program(program):
    """Path of vmseal-kms; fails every KMS test clearly until it is built."""
    try:
        return program("vmseal-kms")
    except pytest.fail.Exception as e:
        missing = e.msg
    pytest.fail(f"vmseal-kms is not built: {missing}", pytrace=False)


@pytest.fixture
def kms_server(kms_program, tmp_path, request, capsys):
    """A freshly initialised vmseal-kms serving on a free loopback port; it
    must stop cleanly (exit 0 on SIGTERM) when the test ends. If the test
    failed, the server's log is printed."""
    from kms import KmsServer
    failed_before = request.session.testsfailed
    with KmsServer(kms_program, tmp_path) as server:
        yield server
        if request.session.testsfailed > failed_before:
            with capsys.disabled():
                print(f"\n--- vmseal-kms serve log ({server.log_path}) ---\n{server.log()}")
