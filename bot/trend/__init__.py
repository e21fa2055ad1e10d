"""Mood trends over days and weeks: the summary (:mod:`.summary`) and its chart (:mod:`.chart`)."""
