"""Parse one command's arguments: positionals, switches and ``--flag value`` options.

Tokens are split shell-style (quotes group words). ``--details`` takes one or more ``key=value``
pairs. A command may instead take the raw rest of the line as its last argument (``create-job``'s
document may contain spaces).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class Arg:
    name: str
    #: What completes here: "job", "status", "job-status", "document" or "text".
    kind: str = "text"
    optional: bool = False


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    #: Placeholder of the value; None makes a switch (True when present).
    value: str | None = None
    #: "int", "pairs" (key=value ...), "job-status" or "text".
    kind: str = "text"


@dataclass
class Parsed:
    args: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def get(self, flag: str, default: Any = None) -> Any:
        return self.options.get(flag, default)


def split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot parse the arguments: {exc}") from None


def _pair(token: str) -> tuple[str, str]:
    key, sep, value = token.partition("=")
    if not sep or not key:
        raise UsageError(f"--details expects key=value pairs, got {token!r}")
    return key, value


def _leading_word(text: str) -> tuple[str, str]:
    """The first word of ``text`` and the rest; a quoted first word keeps its spaces."""
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end < 0:
            raise UsageError(f"unterminated quote in {text.split(' ', 1)[0]!r}")
        return text[1:end], text[end + 1 :]
    word, _, rest = text.partition(" ")
    return word, rest


def parse(args_spec: tuple[Arg, ...], options_spec: tuple[Option, ...], rest: str, raw_tail: bool) -> Parsed:
    """Parse ``rest`` (the line after the command name)."""
    parsed = Parsed()
    if raw_tail:
        # Every positional but the last is a word; the last is the rest of the line, verbatim.
        text = rest.strip()
        for _ in args_spec[:-1]:
            word, text = _leading_word(text)
            if word:
                parsed.args.append(word)
            text = text.strip()
        if text:
            parsed.args.append(text)
        _check_count(args_spec, parsed.args)
        return parsed
    by_flag = {o.flag: o for o in options_spec}
    tokens = split(rest)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("--"):
            parsed.args.append(token)
            continue
        option = by_flag.get(token)
        if option is None:
            known = ", ".join(by_flag) or "none"
            raise UsageError(f"unknown option {token} (options: {known})")
        if option.value is None:
            parsed.options[option.flag] = True
            continue
        if option.kind == "pairs":
            pairs: dict[str, str] = dict(parsed.options.get(option.flag, {}))
            while i < len(tokens) and not tokens[i].startswith("--") and "=" in tokens[i]:
                key, value = _pair(tokens[i])
                pairs[key] = value
                i += 1
            if not pairs:
                raise UsageError(f"{option.flag} needs at least one key=value")
            parsed.options[option.flag] = pairs
            continue
        if i >= len(tokens):
            raise UsageError(f"{option.flag} needs a value ({option.value})")
        value = tokens[i]
        i += 1
        if option.kind == "int":
            try:
                parsed.options[option.flag] = int(value)
            except ValueError:
                raise UsageError(f"{option.flag} expects an integer, got {value!r}") from None
        else:
            parsed.options[option.flag] = value
    _check_count(args_spec, parsed.args)
    return parsed


def _check_count(args_spec: tuple[Arg, ...], given: list[str]) -> None:
    required = sum(1 for a in args_spec if not a.optional)
    if required <= len(given) <= len(args_spec):
        return
    if not args_spec:
        raise UsageError("takes no arguments")
    if required == len(args_spec):
        raise UsageError(f"takes {len(args_spec)} argument(s), got {len(given)}")
    raise UsageError(f"takes {required} to {len(args_spec)} arguments, got {len(given)}")
