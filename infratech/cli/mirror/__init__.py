"""Supply chain: what a stack pulls (``infratech mirror list``)."""
