"""Call-centre metrics folded from completed calls, exact under any delivery (docs/metrics.md).

Pure: no I/O and no clock. ``windows`` places a call's start in its windows, ``contribution``
says what one call adds to each of its window keys, ``partials`` folds those into one
partition's share of a window, and ``combine`` adds the partitions' shares into the published
figures.
"""
