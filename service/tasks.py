"""Installed plug-in training tasks, as the API lists them (found by `workers.tasks`)."""

from __future__ import annotations

from workers.tasks import TaskInfo, installed_tasks

__all__ = ["TaskInfo", "installed_tasks"]
