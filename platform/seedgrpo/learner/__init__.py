"""DeepSpeed learner ranks, training batches and weight sync (imports torch; no Ray here)."""
