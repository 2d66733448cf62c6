"""Exit codes and the default stack, shared by every command (the one home of both).

0 success, 2 bad input (stack file, configuration, flags, job file), 3 a tool missing or failed
(Pulumi CLI, helm, the Kubernetes API), 4 a mandatory policy rule violated.
"""

DEFAULT_STACK = "ovh-gra11"
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_TOOL = 3
EXIT_POLICY = 4
