"""Optimal one-to-one matching of rows (tracks) to columns (detections) under a cost limit, in numpy.

A pair may be matched only when its cost is at most ``limit``; among the allowed matchings the one chosen
minimises the sum of matched costs plus ``limit / 2`` for every row and every column left unmatched (so a pair
is worth matching exactly when its cost is below ``limit``, the convention of LAPJV's ``cost_limit`` that
ByteTrack uses). The matrix is split into independent groups first (rows and columns linked by allowed pairs):
in a video nearly every group is one track and one detection, and only the rare contested group pays for the
O(n^3) Hungarian method.
"""
from __future__ import annotations

import numpy as np

# A cost no finite assignment of the extended problem needs: every row and column can go unmatched instead.
FORBIDDEN = 1e9


def solve_square(cost: np.ndarray) -> np.ndarray:
    """The column given to each row by a minimum-cost perfect assignment of a square matrix (Hungarian method
    with potentials, O(n^3); the inner loop over columns is vectorised)."""
    n = len(cost)
    u = np.zeros(n + 1)  # row potentials (index 0 unused)
    v = np.zeros(n + 1)  # column potentials; column 0 is the virtual start column
    row_of_col = np.zeros(n + 1, np.int64)  # 1-based row assigned to each column, 0: none
    way = np.zeros(n + 1, np.int64)  # previous column on the shortest augmenting path
    for row in range(1, n + 1):
        row_of_col[0] = row
        col = 0
        min_slack = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, bool)
        while True:
            used[col] = True
            current_row = row_of_col[col]
            free = ~used[1:]
            slack = cost[current_row - 1] - u[current_row] - v[1:]
            better = free & (slack < min_slack[1:])
            min_slack[1:][better] = slack[better]
            way[1:][better] = col
            candidates = np.where(free, min_slack[1:], np.inf)
            next_col = int(np.argmin(candidates)) + 1
            delta = candidates[next_col - 1]
            u[row_of_col[used]] += delta  # the rows of used columns are distinct: no repeated index
            v[used] -= delta
            min_slack[1:][free] -= delta
            col = next_col
            if row_of_col[col] == 0:
                break
        while col:  # flip the augmenting path
            previous = way[col]
            row_of_col[col] = row_of_col[previous]
            col = previous
    col_of_row = np.empty(n, np.int64)
    col_of_row[row_of_col[1:] - 1] = np.arange(n)
    return col_of_row


def linked_groups(allowed: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, columns) of each connected group of the bipartite graph whose edges are the allowed pairs; rows
    and columns without any allowed pair are left out."""
    rows_count = allowed.shape[0]
    parent = list(range(rows_count + allowed.shape[1]))  # union-find over rows, then columns

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for r, c in zip(*np.nonzero(allowed)):
        parent[root(int(r))] = root(rows_count + int(c))
    members: dict[int, list[int]] = {}
    for node in np.unique(np.concatenate((np.flatnonzero(allowed.any(axis=1)),
                                          rows_count + np.flatnonzero(allowed.any(axis=0))))):
        members.setdefault(root(int(node)), []).append(int(node))
    groups = []
    for nodes in members.values():
        group = np.asarray(nodes)
        groups.append((group[group < rows_count], group[group >= rows_count] - rows_count))
    return groups


def solve_group(cost: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """Matched (row, column) pairs of one group: the extended square problem where row i may take a dummy
    column (and column j a dummy row) at ``limit / 2`` instead of a real partner."""
    rows, cols = cost.shape
    size = rows + cols
    extended = np.full((size, size), FORBIDDEN)
    extended[:rows, :cols] = np.where(cost <= limit, cost, FORBIDDEN)
    extended[np.arange(rows), cols + np.arange(rows)] = limit / 2  # row left unmatched
    extended[rows + np.arange(cols), np.arange(cols)] = limit / 2  # column left unmatched
    extended[rows:, cols:] = 0.0  # dummy with dummy
    col_of_row = solve_square(extended)
    return [(r, int(col_of_row[r])) for r in range(rows)
            if col_of_row[r] < cols and cost[r, col_of_row[r]] <= limit]


def match(cost: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cost [R, C] -> (matches [K, 2] of (row, column), unmatched rows, unmatched columns), each ascending.

    Pairs with a cost above ``limit`` (or not finite) are never matched."""
    cost = np.asarray(cost, np.float64)
    if cost.ndim != 2:
        raise ValueError(f"expected a cost matrix [R, C], got shape {cost.shape}")
    allowed = np.isfinite(cost) & (cost <= limit)
    pairs: list[tuple[int, int]] = []
    for rows, cols in linked_groups(allowed):
        if len(rows) == 1 and len(cols) == 1:
            pairs.append((int(rows[0]), int(cols[0])))
            continue
        sub = np.where(allowed[np.ix_(rows, cols)], cost[np.ix_(rows, cols)], FORBIDDEN)
        pairs += [(int(rows[r]), int(cols[c])) for r, c in solve_group(sub, limit)]
    matches = np.asarray(sorted(pairs), np.int64).reshape(-1, 2)
    free_rows = np.ones(cost.shape[0], bool)
    free_rows[matches[:, 0]] = False
    free_cols = np.ones(cost.shape[1], bool)
    free_cols[matches[:, 1]] = False
    return matches, np.flatnonzero(free_rows), np.flatnonzero(free_cols)
