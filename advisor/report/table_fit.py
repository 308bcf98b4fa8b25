"""A wide table as one or more rich tables that fit the console: empty columns dropped, the rest stacked.

Our cells are never cropped: a table too wide for the console is split into several, each repeating the
first (key) column, and a cell that still does not fit wraps (folds) instead of ending in an ellipsis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

EMPTY = "-"


@dataclass(frozen=True)
class Grid:
    """Column titles, one row of cells per line, and which rows are dimmed references (not results)."""

    headers: list[str]
    rows: list[list[str]]
    dim_rows: frozenset[int] = frozenset()


def without_empty_columns(grid: Grid) -> Grid:
    """Drop every column (but the first) where no row has a value."""
    keep = [0] + [i for i in range(1, len(grid.headers)) if any(row[i] != EMPTY for row in grid.rows)]
    return Grid([grid.headers[i] for i in keep], [[row[i] for i in keep] for row in grid.rows], grid.dim_rows)


def natural_width(grid: Grid, column: int) -> int:
    """The width a column takes unwrapped: its title or its widest cell."""
    return max([cell_len(grid.headers[column]), *(cell_len(row[column]) for row in grid.rows)])


def column_groups(grid: Grid, width: int) -> list[list[int]]:
    """The other columns packed greedily, in order, into groups that fit `width` beside the first column.

    A rich table with the default box takes each column's width plus 2 of padding plus 1 rule, and 1 more.
    """
    key = natural_width(grid, 0) + 3 + 1
    groups: list[list[int]] = []
    used = key
    for column in range(1, len(grid.headers)):
        needed = natural_width(grid, column) + 3
        if groups and used + needed <= width:
            groups[-1].append(column)
            used += needed
        else:
            groups.append([column])
            used = key + needed
    return groups or [[]]


def fitted_tables(
    grid: Grid, width: int, title: str, caption: str, justify_right: Sequence[bool]
) -> list[RenderableType]:
    """The grid as tables no wider than `width` (as few as fit), the title on the first; the caption under a
    single table, or as a line of its own under several (a narrow last table would squeeze it)."""
    shown = without_empty_columns(grid)
    right = [justify_right[grid.headers.index(h)] for h in shown.headers]
    groups = column_groups(shown, width)
    tables: list[RenderableType] = []
    for number, group in enumerate(groups):
        columns = [0, *group]
        part = title if number == 0 else f"{title} (continued)"
        table = Table(title=Text(part), caption=Text(caption) if caption and len(groups) == 1 else None)
        for column in columns:
            table.add_column(
                Text(shown.headers[column]),
                style="bold" if column == 0 else None,
                justify="right" if right[column] else "left",
                overflow="fold",
            )
        for index, row in enumerate(shown.rows):
            table.add_row(*(Text(row[c]) for c in columns), style="dim" if index in shown.dim_rows else None)
        tables.append(table)
    if caption and len(groups) > 1:
        tables.append(Text(caption, style="dim"))
    return tables
