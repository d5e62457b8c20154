"""Network modes (upstream kei-net-*): what a tunnel was asked to be and what it was seen
to be, as values; no I/O."""
