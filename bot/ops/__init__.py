"""Running the product: settings, logging (with secret redaction), metrics and health checks."""
