"""The barrier check's abstract domain (spec/verify_uniformity.py) against definitions written
here: `meet` of several non-constant operands numbers each thread by its row of their labels among
the distinct rows in lexicographic order, `warp_uniform_on` holds when the active lanes of every warp agree."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from taskmap.spec.verify_uniformity import WARP, Dep, meet, warp_uniform_on

THREADS = st.integers(1, 3 * WARP + 5)


@settings(max_examples=80, deadline=None)
@given(THREADS.flatmap(lambda n: st.lists(st.lists(st.integers(-3, 3), min_size=n, max_size=n), min_size=2,
                                          max_size=4)))
def test_meet_ranks_the_rows_of_labels_lexicographically(columns):
    deps = [Dep(np.array(c, dtype=np.int64)) for c in columns]
    rows = list(zip(*columns))
    varying = [c for c in columns if len(set(c)) > 1]          # constant operands do not split
    want = None
    if len(varying) == 1:
        want = varying[0]                                      # one operand's labels as they are
    elif varying:
        keys = list(zip(*varying))
        order = sorted(set(keys))
        want = [order.index(k) for k in keys]
    got = meet(*deps)
    assert (got is None) == (want is None), rows
    if want is not None:
        assert got.labels.tolist() == want and not got.exact


@settings(max_examples=80, deadline=None)
@given(THREADS.flatmap(lambda n: st.tuples(st.lists(st.integers(0, 2), min_size=n, max_size=n),
                                           st.lists(st.booleans(), min_size=n, max_size=n))))
def test_warp_uniform_on_asks_every_warp_for_one_value(labels_and_mask):
    labels, mask = labels_and_mask
    per_warp = {}
    for lane, (label, active) in enumerate(zip(labels, mask)):
        if active:
            per_warp.setdefault(lane // WARP, set()).add(label)
    want = all(len(s) == 1 for s in per_warp.values())
    assert warp_uniform_on(Dep(np.array(labels)), np.array(mask)) == want
