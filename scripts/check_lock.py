"""Does the environment hold what pyproject.toml asks for? Run by `make`'s install step after it
installed requirements/test.lock: a dependency added to pyproject.toml but not to the lock would
otherwise go missing (the project itself is installed with --no-deps).

    .venv/bin/python scripts/check_lock.py      # exit 1 naming what is missing: run `make lock`
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("dev",)  # what the lock is made from (`make lock`)


def wanted(project: dict[str, Any], extras: tuple[str, ...]) -> list[Requirement]:
    """The project's requirements with `extras`, following its own extras (dev -> demo, train)."""
    name = canonicalize_name(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    chosen, todo = set(), list(extras)
    while todo:  # the extras named, and those they name through the project itself
        extra = todo.pop()
        if extra in chosen:
            continue
        chosen.add(extra)
        for line in optional.get(extra, []):
            req = Requirement(line)
            if canonicalize_name(req.name) == name:
                todo += sorted(req.extras)
    lines = list(project.get("dependencies", [])) + [line for extra in sorted(chosen) for line in optional.get(extra, [])]
    reqs = [Requirement(line) for line in lines]
    return [r for r in reqs if canonicalize_name(r.name) != name and (r.marker is None or r.marker.evaluate({"extra": ""}))]


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    problems = []
    for req in wanted(project, EXTRAS):
        try:
            have = version(req.name)
        except PackageNotFoundError:
            problems.append(f"{req} is not installed")
            continue
        if not req.specifier.contains(have, prereleases=True):
            problems.append(f"{req} but {req.name} {have} is installed")
    for problem in problems:
        print(f"check_lock: {problem}", file=sys.stderr)
    if problems:
        print("check_lock: requirements/test.lock does not match pyproject.toml: run `make lock` and commit it",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
