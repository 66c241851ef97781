"""What happens after a trial or a study ends: listeners, told after the commit."""
