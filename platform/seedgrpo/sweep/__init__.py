"""Sweeps: Ray Tune over trials, MLflow parent and child runs, the console, the report."""
