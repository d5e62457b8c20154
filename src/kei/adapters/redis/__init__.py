"""Redis: a low-latency mirror of the memory read model, fed from the log."""
