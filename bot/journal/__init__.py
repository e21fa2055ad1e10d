"""Mood-journal features on top of the history: export, weekly digest, privacy and retention."""
