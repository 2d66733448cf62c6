"""The Pulumi program: what runs under `pulumi up` (and, unchanged, under the offline plan).

config -> ``providers.create_cluster`` -> ``platform.install`` -> ``outputs.export``
(``__main__.py``). Nothing in here imports ``infratech.cli``: the program needs no tool, and
the tools drive the program only by running ``__main__.py``.
"""
