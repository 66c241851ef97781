"""Everything that runs one study's trials: the driver, the trial loop, the writer,
Optuna's mirror and the Ray runner."""
