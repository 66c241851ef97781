"""PyTorch training for one trial: data, models, optimizers, early stopping, the Ray slot.

Importing this package is cheap: torch is imported by the modules that train.
"""
