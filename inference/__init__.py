"""Model-facing code: audio decoding, speech recognition, emotion and the shared engine."""
