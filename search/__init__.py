"""Search spaces, samplers and pruners: pure functions over Optuna, no I/O."""
