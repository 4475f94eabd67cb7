"""The review desk: what a bookkeeper sees of conflicts and decides on them, as plain
functions over the state DB that the command line (and the review page) call."""
