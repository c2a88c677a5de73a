"""What the identity service needs to know of the thing registry, for thing group policies.

AWS: "You can attach a policy to a parent group and it is inherited by its child groups, and by
all of the things in the group and in its child groups" (developer guide, Static thing groups).
Identity may not import the engine, so the composition root hands it these two look-ups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Groups:
    #: The group and its ancestors, nearest first; None if there is no such group.
    lineage: Callable[[str], list[str] | None]
    #: The groups a thing is a direct member of.
    of_thing: Callable[[str], list[str]]

    def exists(self, name: str) -> bool:
        return self.lineage(name) is not None

    def inherited_by(self, things: Iterable[str]) -> list[str]:
        """Every group whose policies apply to these things: their groups and the groups' ancestors."""
        out: list[str] = []
        for thing in things:
            for group in self.of_thing(thing):
                for name in self.lineage(group) or []:
                    if name not in out:
                        out.append(name)
        return out


#: No registry at all (the ``provision`` CLI, unit tests): no thing belongs to any group.
NO_GROUPS = Groups(lambda _name: None, lambda _thing: [])
