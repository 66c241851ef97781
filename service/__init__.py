"""Orchestration: settings, the study spec, study drivers, start-up and recovery."""
