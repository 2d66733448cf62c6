"""The workload images: built from a Debian root filesystem and locked wheels (`make images`),
run in the tests, pushed to the stack's registry (`infratech images push STACK`). docs/images.md.

It sits beside ``config`` rather than under ``cli``: ``spec`` (the images' names and version) is
read by the stack config for the training image's default, while the rest are the tools behind
``make images`` (``python -m infratech.images``) and ``infratech images``; nothing here imports
the Pulumi program."""
