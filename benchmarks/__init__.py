"""copybot benchmarks: speed and size figures reported as medians and ratios (never asserted in tests)."""
