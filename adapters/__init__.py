"""Platform adapters: each translates platform events to core calls and results to replies."""
