"""The numpy core of the sort-merge as-of join (:mod:`mlharbor.lake.asof_sorted`).

:func:`merge_asof` takes both sides as integer arrays (key ranks, instants) and returns, for each
label row, the position of its feature row: the latest one of the same rank at or before the
label's time, ties going to the last position; ``-1`` when none matches.

**Codes.** Every usable feature row becomes one int64 ``rank << (T + P) | time << P | position``,
where ``time`` is its offset from the earliest feature time and ``position`` its row index. The
codes are sorted with numpy's vectorised sort (no argsort: the code names its row). A label row's
query ``rank << T | time`` (its time clipped to the latest feature time) is searched for with
``searchsorted`` on ``query << P | (2^P - 1)``: the last code at or below it is the answer when it
has the label's rank. The queries are sorted first (their row index packed below them when that
fits, an argsort otherwise), so the searches walk the codes forward.

**Coarse times.** When rank, time and position need more than ``CODE_BITS`` bits, the time keeps
only its high bits (``shift``): a *bucket*. The sort then orders one bucket's rows by position, not
by time, so those buckets' rows (only them) are re-sorted by exact time with a lexsort; and a label
row whose candidate lies in its own bucket steps back, one row at a time, while the candidate is
later than the label. On the benchmark's 1M rows over a year, buckets are half a second wide and
both steps touch a handful of rows.

**Pruning.** A feature row later than every label row of its rank cannot be chosen. When a sample
says that more than half of the rows are such, they are dropped before the sort (at 10 feature rows
per key and one label row per key, about 60% are).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: bits of a code (int64 without its sign bit); tests lower it to force coarse times
CODE_BITS = 63
#: prune when a sample keeps less than this share of the feature rows
PRUNE_BELOW = 0.5
_SAMPLE = 4096


@dataclass
class Side:
    """One side of the join as integers: ``ranks`` (-1: the row cannot match) and ``times``
    (instants, meaningless where ``valid`` is False; ``valid`` None: valid everywhere)."""

    ranks: np.ndarray
    times: np.ndarray
    valid: np.ndarray | None = None


def merge_asof(labels: Side, features: Side, rank_count: int, lookback: int | None) -> np.ndarray | None:
    """Each label row's feature position, or -1; None when ranks and positions leave no room in a code.

    Ranks are below ``rank_count``. With ``lookback`` (in the times' unit), a row found older than
    the label's time minus ``lookback`` does not match.
    """
    import numpy as np

    found = np.full(len(labels.ranks), -1, dtype=np.int64)
    usable = _usable(features)
    ranks = features.ranks if usable is None else features.ranks[usable]
    times = features.times if usable is None else features.times[usable]
    if not len(ranks) or not len(found):
        return found
    t_min, t_max = int(times.min()), int(times.max())
    layout = _Layout.fit(max(rank_count - 1, 0).bit_length(), t_max - t_min, len(features.ranks))
    if layout is None:
        return None
    order, queries = _queries(labels, t_min, t_max, layout)
    if not len(order):
        return found
    private = False  # whether ranks and times are copies this function may overwrite
    if rank_count <= 2 * len(ranks) + 1024:
        ranks, times, usable, private = _prune(ranks, times, usable, labels, order, rank_count)
        if not len(ranks):
            return found
    codes, scratch = layout.codes(ranks, layout.times(_offsets(times, t_min, private)), usable, private)
    codes.sort()
    if layout.shift:
        _sort_buckets(codes, features.times, layout.position_bits, scratch)
    found[order] = _search(codes, queries, labels.times[order], features.times, layout)
    if lookback is not None and lookback < 2**64:
        hit = np.flatnonzero(found >= 0)
        # label time - feature time >= 0 may exceed int64 (1677 to 2262 in ns): unsigned difference
        gap = labels.times[hit].view(np.uint64) - features.times[found[hit]].view(np.uint64)
        found[hit[gap > np.uint64(lookback)]] = -1
    return found


def _usable(side: Side) -> np.ndarray | None:
    """Positions of the rows with a rank and a time (None: all rows)."""
    import numpy as np

    if side.valid is None and (not len(side.ranks) or side.ranks.min() >= 0):
        return None
    usable = side.ranks >= 0
    if side.valid is not None:
        usable &= side.valid
    return None if usable.all() else np.flatnonzero(usable)


def _offsets(times: np.ndarray, t_min: int, in_place: bool = False) -> np.ndarray:
    """``times - t_min`` as uint64: exact for times at or after ``t_min``, even past int64's range."""
    import numpy as np

    unsigned = times.view(np.uint64)
    return np.subtract(unsigned, np.uint64(t_min % 2**64), out=unsigned if in_place else None)


@dataclass(frozen=True)
class _Layout:
    """Bit widths of a code: ``rank << (time_bits + position_bits) | time >> shift << position_bits | position``."""

    time_bits: int  # after the shift
    position_bits: int
    shift: int  # low bits of the time offset dropped

    @classmethod
    def fit(cls, rank_bits: int, span: int, rows: int) -> _Layout | None:
        """The widest time that fits CODE_BITS beside the ranks and positions (None: no room)."""
        position_bits = (rows - 1).bit_length()
        shift = max(0, rank_bits + span.bit_length() + position_bits - CODE_BITS)
        if shift > span.bit_length():
            return None
        return cls(span.bit_length() - shift, position_bits, shift)

    def times(self, offsets: np.ndarray) -> np.ndarray:
        """Unsigned time ``offsets`` (at most the span ``fit`` was given) without their low ``shift``
        bits, as int64, in place."""
        import numpy as np

        if self.shift:
            offsets >>= np.uint64(self.shift)
        return offsets.view(np.int64)

    def codes(
        self, ranks: np.ndarray, times: np.ndarray, positions: np.ndarray | None, private: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """``rank << (time_bits + position_bits) | time << position_bits | position`` (``positions``
        None: 0 to n-1), built in ``times``, and a scratch array of the same size (``ranks`` itself
        when ``private``). Fresh arrays cost page faults as well as a pass: they are avoided."""
        import numpy as np

        shifted = np.left_shift(ranks, self.time_bits + self.position_bits, out=ranks if private else None)
        times <<= self.position_bits
        times |= shifted
        times |= np.arange(len(times), dtype=np.int64) if positions is None else positions
        return times, shifted


def _queries(labels: Side, t_min: int, t_max: int, layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """The label rows that can match, in query order, and their sorted queries ``rank << T | time``."""
    import numpy as np

    wanted = labels.ranks >= 0
    wanted &= labels.times >= t_min
    if labels.valid is not None:
        wanted &= labels.valid
    rows = np.flatnonzero(wanted)
    offsets = np.minimum(_offsets(labels.times[rows], t_min), np.uint64(t_max - t_min))
    queries = labels.ranks[rows] << layout.time_bits
    queries |= layout.times(offsets)
    row_bits = max(len(rows) - 1, 0).bit_length()
    if row_bits > layout.position_bits:  # no room below the query: argsort
        order = np.argsort(queries)
        return rows[order], queries[order]
    queries <<= row_bits
    queries |= np.arange(len(rows), dtype=np.int64)
    queries.sort()
    order = rows[queries & ((1 << row_bits) - 1)]
    queries >>= row_bits
    return order, queries


def _prune(
    ranks: np.ndarray,
    times: np.ndarray,
    positions: np.ndarray | None,
    labels: Side,
    wanted: np.ndarray,
    rank_count: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """Drop the feature rows later than every label row of their rank, when a sample says most are.

    ``wanted`` are the label rows that can match. Returns the rows' ranks, times and positions, and
    whether the first two are fresh copies.
    """
    import numpy as np

    latest = np.full(rank_count, np.iinfo(np.int64).min, dtype=np.int64)  # per rank, its latest label
    np.maximum.at(latest, labels.ranks[wanted], labels.times[wanted])
    sample = slice(None, None, max(1, len(ranks) // _SAMPLE))
    if np.count_nonzero(times[sample] <= latest[ranks[sample]]) >= PRUNE_BELOW * len(times[sample]):
        return ranks, times, positions, False
    kept = np.flatnonzero(times <= latest[ranks])
    return ranks[kept], times[kept], kept if positions is None else positions[kept], True


def _sort_buckets(codes: np.ndarray, feature_time: np.ndarray, position_bits: int, scratch: np.ndarray) -> None:
    """Re-sort, in place, the rows of coarse buckets holding several rows by (exact time, position)."""
    import numpy as np

    buckets = np.right_shift(codes, position_bits, out=scratch)
    shared = np.flatnonzero(buckets[1:] == buckets[:-1])
    if not len(shared):
        return
    members = np.union1d(shared, shared + 1)  # whole buckets: they are contiguous in sorted codes
    part = codes[members]
    positions = part & ((1 << position_bits) - 1)
    codes[members] = part[np.lexsort((positions, feature_time[positions], part >> position_bits))]


def _search(codes: np.ndarray, queries: np.ndarray, label_time: np.ndarray, feature_time: np.ndarray,
            layout: _Layout) -> np.ndarray:
    """Positions found for sorted queries (-1: none); ``label_time`` are the queries' exact times.

    The last code at or below the query's bucket is the answer when it has the query's rank,
    unless (coarse times only) it lies in the query's own bucket and is later than the label:
    then the label steps back through its bucket. Within a bucket rows are ordered by (exact
    time, position), so the first row not later than the label is the latest one, ties last.
    """
    import numpy as np

    mask = (1 << layout.position_bits) - 1
    # codes within a re-sorted bucket are not ascending, but all lie between the bucket's bounds,
    # so "code <= last code of the query's bucket" is still monotone along the array
    at = np.searchsorted(codes, (queries << layout.position_bits) | mask, side="right") - 1
    candidate = codes[np.maximum(at, 0)]
    ok = (at >= 0) & (candidate >> (layout.position_bits + layout.time_bits) == queries >> layout.time_bits)
    positions = np.where(ok, candidate & mask, -1)
    if not layout.shift:
        return positions
    late = np.flatnonzero(ok & ((candidate >> layout.position_bits) == queries))
    late = late[feature_time[positions[late]] > label_time[late]]
    while len(late):
        at[late] -= 1
        step = codes[np.maximum(at[late], 0)]
        same_rank = (at[late] >= 0) & (
            step >> (layout.position_bits + layout.time_bits) == queries[late] >> layout.time_bits
        )
        positions[late] = np.where(same_rank, step & mask, -1)
        late = late[same_rank & ((step >> layout.position_bits) == queries[late])]
        late = late[feature_time[positions[late]] > label_time[late]]
    return positions
