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
