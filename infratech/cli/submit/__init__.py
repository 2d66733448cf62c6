"""Researchers' jobs on the cluster: ``infratech submit train|eval|serve`` and ``infratech jobs``.

A job file (``examples/jobs/``) is validated (:mod:`.models`), placed with the stack's outputs
(:mod:`.resolve`: the team's namespace and Kueue LocalQueue, the training runtime, the GPU flavour),
turned into the values of its chart (:mod:`.values`: charts/llm-train, llm-eval, llm-serve),
rendered with ``helm template`` (:mod:`.render`) and applied with server-side apply
(:mod:`.cluster`, the only module that talks to an API server). :mod:`.jobs` reads Kueue's
Workload objects for ``jobs list|status|logs|cancel``. docs/jobs.md walks through it.
"""
