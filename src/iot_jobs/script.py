"""``-c "cmd; cmd"``: split a script into command lines at ``;`` and newlines.

A ``;`` inside quotes (shell-style ``'...'``/``"..."``, as the commands' own arguments use) or
inside a JSON document's braces/brackets does not split, so ``create-job J {"a":"x;y"}`` is one
command.
"""

from __future__ import annotations


def split_commands(script: str) -> list[str]:
    lines: list[str] = []
    current: list[str] = []
    quote: str | None = None
    depth = 0
    escaped = False
    for char in script:
        if escaped:
            escaped = False
        elif quote is not None:
            if char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth = max(0, depth - 1)
        elif char in ";\n" and depth == 0:
            lines.append("".join(current))
            current = []
            continue
        current.append(char)
    lines.append("".join(current))
    return [line.strip() for line in lines if line.strip()]
