"""Completion as you type: a pure ``suggest`` over the command table, and a thin prompt_toolkit adapter.

Completes command names, job ids (seen in this session, and the service's: see ``job_ids``),
statuses, ``$next``, each command's options and ``@file`` paths of job documents; matching is
case-insensitive (paths: as the file system spells them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from .commands import DEVICE_STATUSES, EXECUTION_STATUSES, JOB_STATUSES, Command

_VALUE_KINDS = {"job-status": JOB_STATUSES, "execution-status": EXECUTION_STATUSES}


@dataclass(frozen=True)
class Suggestion:
    text: str
    #: How many characters before the cursor the suggestion replaces.
    replace: int
    meta: str = ""


def _matching(word: str, candidates: Iterable[str], meta: str = "") -> list[Suggestion]:
    low = word.lower()
    return [Suggestion(c, len(word), meta) for c in candidates if c.lower().startswith(low) and c != word]


def suggest(text: str, table: Mapping[str, Command], job_ids: Iterable[str]) -> list[Suggestion]:
    """What may come at the end of ``text`` (the line up to the cursor)."""
    current = "" if not text or text[-1].isspace() else text.split()[-1]
    before = text[: len(text) - len(current)].split()
    if not before:
        return [
            Suggestion(c.name, len(current), c.summary) for c in table.values() if c.name.startswith(current.lower())
        ]
    command = table.get(before[0].lower())
    if command is None:
        return []
    tokens = before[1:]
    options = {o.flag: o for o in command.options}
    if tokens and tokens[-1] in options:
        option = options[tokens[-1]]
        if option.kind in _VALUE_KINDS:
            return _matching(current, _VALUE_KINDS[option.kind], option.flag)
        if option.value is not None and option.kind != "pairs":
            return []  # a free value (a number, a comment)
    if current.startswith("-"):
        used = set(tokens)
        return _matching(current, [f for f in options if f not in used], "option")
    position = _positional_index(tokens, options)
    if position >= len(command.args):
        return []
    arg = command.args[position]
    if arg.kind == "job":
        candidates = list(job_ids) + (["$next"] if command.name == "describe-job-execution" else [])
        return _matching(current, candidates, "job")
    if arg.kind == "status":
        return _matching(current, DEVICE_STATUSES, "status")
    if arg.kind == "command":
        return _matching(current, table, "command")
    if arg.kind == "document" and current.startswith("@"):
        return _paths(current)
    return []


def _paths(current: str) -> list[Suggestion]:
    """``@dir/pa`` -> the entries of ``dir`` starting with ``pa`` (directories end in ``/``)."""
    typed = current[1:]
    folder, _, prefix = typed.rpartition("/")
    rooted = typed.startswith("/") and not folder  # "@/et" -> entries of /
    base = Path("/") if rooted else Path(folder or ".").expanduser()
    head = "/" if rooted else (f"{folder}/" if folder else "")
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        is_dir = entry.is_dir()
        found.append(
            Suggestion(f"@{head}{entry.name}{'/' if is_dir else ''}", len(current), "dir" if is_dir else "file")
        )
    return found


def _positional_index(tokens: list[str], options: Mapping[str, object]) -> int:
    count, skip = 0, False
    for token in tokens:
        if skip:
            skip = False
            continue
        option = options.get(token)
        if option is not None:
            skip = getattr(option, "value", None) is not None and getattr(option, "kind", "") != "pairs"
            continue
        if token.startswith("--") or ("=" in token and count > 0):
            continue  # an unknown flag, or a key=value of --details
        count += 1
    return count


class CommandCompleter(Completer):
    def __init__(self, table: Mapping[str, Command], job_ids: Callable[[], Iterable[str]]) -> None:
        self._table = table
        self._job_ids = job_ids

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        for s in suggest(document.text_before_cursor, self._table, self._job_ids()):
            yield Completion(s.text, start_position=-s.replace, display_meta=s.meta)
