"""What each framework adapter costs a scripted run of its framework: one script per
framework, run in that framework's own environment (``nox`` makes one per framework);
not part of ``python -m benchmarks``."""
