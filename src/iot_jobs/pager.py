"""Long output through a pager, as pgcli does: only on a terminal, only when the output would not
fit on the screen, ``$PAGER`` or else ``less -RXF`` (-R keeps colour, -X leaves the text on the
screen after quitting, -F quits at once if it fits after all). ``--no-pager`` turns it off."""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")
DEFAULT = "less -RXF"


def rows_needed(text: str, columns: int) -> int:
    """Screen rows ``text`` takes once long lines wrap."""
    return sum(max(1, -(-len(_ANSI.sub("", line)) // max(1, columns))) for line in text.split("\n"))


def command() -> list[str] | None:
    """The pager to run, or None if there is none."""
    words = shlex.split(os.environ.get("PAGER") or DEFAULT)
    if not words or shutil.which(words[0]) is None:
        return None
    return words


def page(text: str, pager: list[str]) -> bool:
    """Show ``text`` through ``pager`` on the terminal; False if it could not run (print it instead).

    The pager reads a temporary file, so a Ctrl-C (which the pager handles itself) cannot cut its
    input; we wait through Ctrl-Cs until it quits.
    """
    sys.stdout.flush()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as source:
        source.write(text + "\n")
        source.seek(0)
        try:
            process = subprocess.Popen(pager, stdin=source, stdout=sys.__stdout__)
        except OSError as exc:
            log.warning("pager %s failed: %s", pager, exc)
            return False
        while True:
            try:
                process.wait()
                return True
            except KeyboardInterrupt:
                continue
