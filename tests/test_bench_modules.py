"""The benchmarks under bench/ are run by hand, not by the suite: these checks keep them from rotting
when the code they drive moves (an import of a renamed module only shows when a section runs)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.botrun import ROOT, write_config

BENCH_MODULES = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", BENCH_MODULES)
def test_every_bench_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")


def test_the_view_probe_runs_a_command_in_process(tmp_path: Path) -> None:
    config = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=f"sqlite:///{tmp_path / 'bot.db'}")
    done = subprocess.run([sys.executable, "-m", "bench.viewprobe", "--profile", "5", "--",
                           "--config", str(config), "config", "show"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["timed_out"] and result["seconds"] > 0
    assert "cumulative" in result["profile"]
