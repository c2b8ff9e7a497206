"""What operators see of a running Hubgate: health, metrics, logs and traces (D62-D65)."""
