"""The supply chain: the images each pinned chart runs (:mod:`.table`), how a chart's values name
them, and their place in an in-country mirror (:mod:`.refs`). Used by the program (``mirror:`` set),
the policy rules and ``infratech mirror``."""
