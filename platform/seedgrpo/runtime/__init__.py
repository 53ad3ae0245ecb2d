"""One trial on Ray: actors, the training loop, weight sync, checkpoints and metrics."""
