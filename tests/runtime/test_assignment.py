"""Linear assignment under a cost limit against brute force on small random matrices."""
import itertools

import numpy as np
import pytest

from nanogfl.runtime.assignment import linked_groups, match, solve_square


def best_partial_total(cost: np.ndarray, limit: float) -> float:
    """The least sum of matched costs + limit / 2 per unmatched row and column, by enumeration."""
    rows, cols = cost.shape
    best = (rows + cols) * limit / 2
    for size in range(1, min(rows, cols) + 1):
        for chosen_rows in itertools.combinations(range(rows), size):
            for chosen_cols in itertools.permutations(range(cols), size):
                picked = cost[list(chosen_rows), list(chosen_cols)]
                if (picked <= limit).all():
                    best = min(best, picked.sum() + (rows + cols - 2 * size) * limit / 2)
    return best


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_square_assignment_is_optimal(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        cost = rng.random((n, n)) * 10
        columns = solve_square(cost)
        assert sorted(columns.tolist()) == list(range(n))
        best = min(cost[range(n), list(p)].sum() for p in itertools.permutations(range(n)))
        assert cost[range(n), columns].sum() == pytest.approx(best)


def test_limited_matching_is_optimal_on_random_rectangles():
    rng = np.random.default_rng(0)
    for _ in range(200):
        rows, cols = rng.integers(0, 6, 2)
        cost = rng.random((rows, cols))
        cost[rng.random((rows, cols)) < 0.2] = np.inf  # forbidden pairs (another class)
        pairs, free_rows, free_cols = match(cost, 0.5)
        assert len(pairs) + len(free_rows) == rows and len(pairs) + len(free_cols) == cols
        assert (cost[pairs[:, 0], pairs[:, 1]] <= 0.5).all()
        total = cost[pairs[:, 0], pairs[:, 1]].sum() + (len(free_rows) + len(free_cols)) * 0.25
        assert total == pytest.approx(best_partial_total(cost, 0.5))


def test_one_strong_pair_beats_two_weak_ones():
    """Track 0 fits detection 0 well and detection 1 poorly; track 1 fits only detection 0, poorly. Matching as
    many as possible would pair both weakly; the cost limit keeps the strong pair."""
    cost = np.array([[0.1, 0.75], [0.75, np.inf]])
    pairs, free_rows, free_cols = match(cost, 0.8)
    assert pairs.tolist() == [[0, 0]] and free_rows.tolist() == [1] and free_cols.tolist() == [1]


def test_groups_split_independent_blocks():
    allowed = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]], bool)
    groups = sorted((r.tolist(), c.tolist()) for r, c in linked_groups(allowed))
    assert groups == [([0], [0]), ([1, 2], [2])]


def test_empty_and_bad_shapes():
    pairs, free_rows, free_cols = match(np.zeros((0, 3)), 0.5)
    assert pairs.shape == (0, 2) and free_rows.tolist() == [] and free_cols.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="cost matrix"):
        match(np.zeros(3), 0.5)
