"""Which code a run measured: the commit and whether the working tree differed from it."""

from __future__ import annotations

import subprocess

from django.conf import settings


def _git(*args: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed read-only git queries
            ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def code_version() -> str:
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    changed = [line for line in _git("status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()]
    return f"{commit} + {len(changed)} changed files" if changed else commit
