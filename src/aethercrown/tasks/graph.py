"""Checks on a batch of new tasks' dependencies: unknown ids and cycles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def unknown_dependencies(
    new: Mapping[str, Sequence[str]], existing: set[str]
) -> list[tuple[str, int, str]]:
    """(task, index, dependency) for every dependency that is neither new nor stored."""
    out = []
    for task, deps in new.items():
        for i, dep in enumerate(deps):
            if dep not in new and dep not in existing:
                out.append((task, i, dep))
    return out


def find_cycle(new: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle among the new tasks as a path ``[a, b, …, a]``, or None.

    Stored tasks cannot take part: they were accepted before and cannot depend on new ones.
    Iterative DFS, so a long chain does not hit the recursion limit.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(new, white)
    for root in new:
        if colour[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        colour[root] = grey
        while stack:
            node, index = stack[-1]
            deps = [d for d in new[node] if d in new]
            if index < len(deps):
                stack[-1] = (node, index + 1)
                child = deps[index]
                if colour[child] == grey:
                    return [*path[path.index(child) :], child]
                if colour[child] == white:
                    colour[child] = grey
                    stack.append((child, 0))
                    path.append(child)
            else:
                colour[node] = black
                stack.pop()
                path.pop()
    return None
