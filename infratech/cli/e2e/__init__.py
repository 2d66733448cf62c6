"""``infratech e2e STACK``: an acceptance run of a stack on its provider, phase by phase, with a
report of each phase's outcome and evidence (docs/e2e.md).

- model.py: the phases, what each checks and does not, an outcome with its evidence;
- estimate.py: the run's cost in EUR from the catalog;
- checks.py: what is read back from the API server;
- phases.py: each phase, calling the commands' own code;
- runner.py: the phases in order, timed, stopped at the first failure, torn down or kept;
- report.py: build/e2e/<stack>-<UTC time>.json and .md, and the dry run's text.
"""
