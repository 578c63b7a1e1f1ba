"""Benchmarks and the soak: numbers the project reports (round trips, heap, crypto rate,
flash time, long checked runs). They measure; they never assert timings."""
