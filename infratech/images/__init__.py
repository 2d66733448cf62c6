"""The workload images: built from a Debian root filesystem and locked wheels (`make images`),
run in the tests, pushed to the stack's registry (`infratech images push STACK`). docs/images.md."""
