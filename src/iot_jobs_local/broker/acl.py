"""IoT policies -> a Mosquitto ACL block per certificate (``user <CN>`` + ``topic`` lines).

Mosquitto 2.0's ACL file speaks MQTT topic filters with ``read`` (checked on delivery: iot:Receive),
``write`` (checked on PUBLISH: iot:Publish) and ``deny`` (both directions, checked first). IoT
policy resources are globs, so the translation is approximate, always on the safe side:

* Allow resources become filters that match a SUBSET of the glob's topics: a whole-level ``*``
  becomes ``+`` (``+/#`` at the end), a level mixing ``*``/``?`` with text (``dev-*``) cannot be
  expressed and is dropped. A glob whose first level can match ``$aws`` also yields ``$aws/...``
  (MQTT wildcards never match ``$`` topics; IoT's ``*`` does).
* Deny resources become filters that match a SUPERSET (``dev-*`` -> ``+``, ``a/*/b`` -> ``a/#``).
  A Deny that covers an Allow entry removes that direction from it; one that only overlaps it
  becomes ``topic deny``, which Mosquitto applies to both directions (we deny too much, never too
  little).
* Variables are expanded per certificate: ``${iot:Connection.Thing.ThingName}`` with the things
  attached to it, ``${iot:ClientId}`` with the client ids its iot:Connect statements name literally
  plus the client ids it is connected with right now (see ``needs_live_client_ids``).
* Whatever the policy says, writes to ``$`` topics are cut down to the topics AWS lets devices
  publish on (``PUBLISHABLE_RESERVED``): no device can forge a jobs reply or event.
* iot:Subscribe is not enforced: Mosquitto 2.0's ACL file grants every SUBSCRIBE, and what is
  delivered is decided by iot:Receive (``read``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from ..identity import policies
from ..identity.policies import ONE, STAR, Facts, Statement, Tokens

READ = "read"
WRITE = "write"

#: The ``$aws`` topics a device may publish on (requests to AWS services), everything else that
#: starts with ``$`` is reserved for the service. Jobs: the four request topics. Shadow and Basic
#: Ingest are listed because AWS lets devices publish there (nothing serves them locally).
PUBLISHABLE_RESERVED = (
    "$aws/things/+/jobs/get",
    "$aws/things/+/jobs/start-next",
    "$aws/things/+/jobs/+/get",
    "$aws/things/+/jobs/+/update",
    "$aws/things/+/shadow/get",
    "$aws/things/+/shadow/update",
    "$aws/things/+/shadow/delete",
    "$aws/things/+/shadow/name/+/get",
    "$aws/things/+/shadow/name/+/update",
    "$aws/things/+/shadow/name/+/delete",
    "$aws/rules/#",
)

_ACTIONS = {"iot:Publish": WRITE, "iot:Receive": READ}
_MODE_LETTERS = {"deny": "d", READ: "r", WRITE: "w", "readwrite": "b"}


@dataclass(frozen=True)
class Subject:
    """A certificate as the ACL sees it."""

    common_name: str
    region: str
    account: str
    thing_names: tuple[str, ...]
    live_client_ids: tuple[str, ...] = ()

    def prefix(self, kind: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:{kind}/"


@dataclass
class CertificateAcl:
    common_name: str
    grants: dict[str, set[str]] = field(default_factory=dict)
    denies: list[str] = field(default_factory=list)
    #: ``${iot:ClientId}`` appears in a topic resource and iot:Connect allows client ids by
    #: wildcard: the ACL must be rebuilt when this certificate connects with a new client id.
    needs_live_client_ids: bool = False

    def entries(self) -> list[tuple[str, str]]:
        """(mode, filter) in the order the broker checks them: ``deny`` first, then ``read``,
        ``write`` or ``readwrite``; grants that lost every access to a Deny are left out."""
        out = [("deny", f) for f in self.denies]
        for topic_filter, access in sorted(self.grants.items()):
            if access:
                out.append(("readwrite" if access == {READ, WRITE} else next(iter(access)), topic_filter))
        return out

    def entries_text(self) -> bytes:
        """The entries as the broker plugin's table takes them (``connect_auth.c``): one
        ``<d|r|w|b> <filter>`` line each (a filter with a newline cannot be written, and is left out)."""
        lines = [f"{_MODE_LETTERS[mode]} {f}\n" for mode, f in self.entries() if "\n" not in f]
        return "".join(lines).encode()

    def render(self) -> list[str]:
        """The ACL file's section (Mosquitto without the plugin: tests of the broker alone)."""
        return [f"user {self.common_name}", *(f"topic {mode} {f}" for mode, f in self.entries())]


# MQTT filter algebra -----------------------------------------------------------------------------
def _dollar(levels: Sequence[str]) -> bool:
    return bool(levels) and levels[0].startswith("$")


def intersect(a: str, b: str) -> str | None:
    """A filter matching exactly the topics both ``a`` and ``b`` match, or None if there are none."""
    x, y = a.split("/"), b.split("/")
    if (x[0] in ("+", "#") and _dollar(y)) or (y[0] in ("+", "#") and _dollar(x)):
        return None
    out: list[str] = []
    for i in range(max(len(x), len(y))):
        p = x[i] if i < len(x) else None
        q = y[i] if i < len(y) else None
        if p == "#":
            return "/".join(out + y[i:])  # "a/#" also matches "a": with y == "a" that is all
        if q == "#":
            return "/".join(out + x[i:])
        if p is None or q is None:
            return None
        if p == "+":
            out.append(q)
        elif q == "+" or p == q:
            out.append(p)
        else:
            return None
    return "/".join(out)


def covers(outer: str, inner: str) -> bool:
    """Every topic ``inner`` matches is matched by ``outer``."""
    x, y = outer.split("/"), inner.split("/")
    if x[0] in ("+", "#") and _dollar(y):
        return False
    for i, p in enumerate(x):
        if p == "#":
            return True
        if i >= len(y):
            return False
        q = y[i]
        if q == "#" or (p != "+" and p != q):
            return False
    return len(x) == len(y)


def restrict_write(topic_filter: str) -> list[str]:
    """The part of ``topic_filter`` a device may publish on."""
    if topic_filter.startswith("$"):
        found = (intersect(topic_filter, allowed) for allowed in PUBLISHABLE_RESERVED)
        return sorted({f for f in found if f is not None})
    return [topic_filter]


# globs -> filters --------------------------------------------------------------------------------
def _levels(topic: Tokens) -> list[Tokens]:
    levels: list[list[str]] = [[]]
    for token in topic:
        if token == "/":
            levels.append([])
        else:
            levels[-1].append(token)
    return [tuple(level) for level in levels]


def _could_start_with_dollar(level: Tokens) -> bool:
    return bool(level) and (level[0] in (STAR, "$"))


def _filter(levels: Sequence[Tokens], superset: bool) -> str | None:
    out: list[str] = []
    for i, level in enumerate(levels):
        last = i == len(levels) - 1
        if level == (STAR,):
            if superset:
                return "/".join([*out, "#"])
            out.append("#" if not out and last else "+/#" if last else "+")
            continue
        if all(len(t) == 1 for t in level):
            text = "".join(level)
            if "+" in text or "#" in text:  # a topic cannot contain them: nothing matches
                if not superset:
                    return None
                text = "+"
            out.append(text)
            continue
        if not superset:
            return None
        if STAR in level:
            return "/".join([*out, "#"])
        out.append("+")
    return "/".join(out)


def topic_filters(topic: Tokens, superset: bool) -> set[str]:
    """MQTT filters for an IoT topic glob: a subset of its topics, or a superset if ``superset``."""
    levels = _levels(topic)
    found: set[str] = set()
    main = _filter(levels, superset)
    if main is not None:
        found.add(main)
    if _could_start_with_dollar(levels[0]) and not (main or "").startswith("$"):
        if superset:
            found.add("$aws/#")
        elif levels[0] == (STAR,):
            rest = _filter(levels[1:], superset) if len(levels) > 1 else "#"
            if rest is not None:
                found.add(f"$aws/{rest}")
    return found


def _prefix_ends(tokens: Sequence[str], prefix: str, hole: str | None = None) -> frozenset[int] | None:
    """Start indices of what remains of ``tokens`` once they have matched all of ``prefix``; None if
    the match reaches a ``hole`` token (a variable whose value would decide it)."""
    results: set[int] = set()
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if j == len(prefix):
            results.add(i)
            continue
        if i == len(tokens):
            continue
        token = tokens[i]
        if hole is not None and token == hole:
            return None
        if token == STAR:
            stack += [(i, j + 1), (i + 1, j)]
        elif token == ONE or token == prefix[j]:
            stack.append((i + 1, j + 1))
    return frozenset(results)


@lru_cache(maxsize=8192)
def _after_prefix(resource: Tokens, prefix: str) -> frozenset[int]:
    """Start indices of what remains of ``resource`` once it has matched all of ``prefix``."""
    return _prefix_ends(resource, prefix) or frozenset()


def remainders(resource: Tokens, prefix: str) -> list[Tokens]:
    return [resource[i:] for i in sorted(_after_prefix(resource, prefix))]


#: A variable left in place, as one token (MQTT strings, hence values, cannot contain U+0000).
_HOLE = "\x00$"


@lru_cache(maxsize=8192)
def _template(resource: str, prefix: str) -> tuple[tuple[Tokens, ...], tuple[str, ...]] | None:
    """What remains of ``resource`` once it has matched ``prefix``, with each variable left as a
    hole (and the variables' names, in order), if matching the prefix never reaches a variable:
    then the remainders are the same for any values, and a fleet's certificates, which differ only
    in their thing names, share one match. None if a variable is inside the prefix's reach."""
    tokens: list[str] = []
    names: list[str] = []
    position = 0
    for found in policies.VARIABLE.finditer(resource):
        tokens += policies.glob_tokens(resource[position : found.start()])
        name = found.group(1)
        if name in policies.ESCAPES:
            tokens.append(policies.ESCAPES[name])
        else:
            tokens.append(_HOLE)
            names.append(name)
        position = found.end()
    tokens += policies.glob_tokens(resource[position:])
    if not names:
        return None
    results = _prefix_ends(tokens, prefix, _HOLE)
    if results is None:
        return None
    return tuple(tuple(tokens[i:]) for i in sorted(results)), tuple(names)


def resource_remainders(resource: str, variables: dict[str, str], prefix: str) -> list[Tokens]:
    """The remainders of ``resource`` (variables replaced) after ``prefix``; none if a variable
    has no value. Equal to ``remainders(policies.tokens(resource, variables), prefix)``."""
    template = _template(resource, prefix)
    if template is None:
        found = policies.tokens(resource, variables)
        return remainders(found, prefix) if found is not None else []
    rests, names = template
    values = []
    for name in names:
        value = variables.get(name)
        if value is None:
            return []
        values.append([STAR] if value == policies.ANY_VALUE else list(value))
    out = []
    for rest in rests:
        expanded: list[str] = []
        # The holes are the last len(names) ones of the resource: count from the end.
        remaining = rest.count(_HOLE)
        first = len(names) - remaining
        for token in rest:
            if token == _HOLE:
                expanded += values[first]
                first += 1
            else:
                expanded.append(token)
        out.append(tuple(expanded))
    return out


# per certificate ---------------------------------------------------------------------------------
def _variable_sets(resource: str, subject: Subject, client_ids: Sequence[str]) -> list[dict[str, str]]:
    """Every assignment of the variables ``resource`` uses (none if one has no value)."""
    used = policies.variables_of(resource)
    choices: list[dict[str, str]] = [{}]
    for name, values in ((policies.THING_NAME, subject.thing_names), (policies.CLIENT_ID, client_ids)):
        if name in used:
            choices = [{**c, name: v} for c in choices for v in values]
    return choices


def literal_client_ids(statements: Iterable[Statement], subject: Subject) -> tuple[set[str], bool]:
    """Client ids iot:Connect allows by name, and whether it also allows some by wildcard."""
    names: set[str] = set()
    open_ended = False
    facts = Facts(is_attached=bool(subject.thing_names))
    for s in statements:
        if not s.allows or not _mentions(s, "iot:Connect"):
            continue
        if policies.condition_holds(s.condition, facts) is not True:
            continue
        for resource in s.resources:
            if policies.CLIENT_ID in policies.variables_of(resource):
                open_ended = True
                continue
            for variables in _variable_sets(resource, subject, ()):
                for rest in resource_remainders(resource, variables, subject.prefix("client")):
                    if all(len(t) == 1 for t in rest):
                        names.add("".join(rest))
                    else:
                        open_ended = True
    return names, open_ended


def _mentions(statement: Statement, action: str) -> bool:
    return _actions_mention(statement.actions, action)


@lru_cache(maxsize=4096)
def _actions_mention(actions: tuple[str, ...], action: str) -> bool:
    return any(policies.action_matches(a, action) for a in actions)


def compile_acl(statements: Sequence[Statement], subject: Subject) -> CertificateAcl:
    acl = CertificateAcl(subject.common_name)
    named, open_ended = literal_client_ids(statements, subject)
    client_ids = sorted(named | set(subject.live_client_ids))
    facts = Facts(is_attached=bool(subject.thing_names))
    denies: list[tuple[str, set[str]]] = []
    for s in statements:
        access = {mode for action, mode in _ACTIONS.items() if _mentions(s, action)}
        if not access:
            continue
        holds = policies.condition_holds(s.condition, facts)
        if (s.allows and holds is not True) or (not s.allows and holds is False):
            continue
        for resource in s.resources:
            candidates = client_ids
            if policies.CLIENT_ID in policies.variables_of(resource) and open_ended:
                if s.allows:
                    acl.needs_live_client_ids = True
                else:
                    candidates = [policies.ANY_VALUE]  # a Deny must hold for every possible client id
            for variables in _variable_sets(resource, subject, candidates):
                for topic in resource_remainders(resource, variables, subject.prefix("topic")):
                    for topic_filter in topic_filters(topic, superset=not s.allows):
                        if s.allows:
                            for mode in access:
                                for allowed in restrict_write(topic_filter) if mode == WRITE else [topic_filter]:
                                    acl.grants.setdefault(allowed, set()).add(mode)
                        else:
                            denies.append((topic_filter, access))
    for deny, access in denies:
        overlapping = False
        for topic_filter, granted in acl.grants.items():
            if not granted & access:
                continue
            if covers(deny, topic_filter):
                granted -= access
            elif intersect(deny, topic_filter) is not None:
                overlapping = True
        if overlapping and deny not in acl.denies:
            acl.denies.append(deny)
    return acl


def render(acls: Iterable[CertificateAcl]) -> str:
    lines = ["# generated by iot-jobs-local from the IoT policies attached to each ACTIVE certificate", ""]
    for acl in acls:
        if "\n" in acl.common_name or " " in acl.common_name:
            continue
        lines += [line for line in acl.render() if "\n" not in line] + [""]
    return "\n".join(lines)
