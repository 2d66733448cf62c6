"""One module per command group; each has ``add(subparsers)``, which registers its parsers with
``set_defaults(run=…)``: ``run(args, project)`` returns the exit code (``infratech.exits``)."""
