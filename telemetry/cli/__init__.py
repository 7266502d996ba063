"""The ``yolo-telemetry`` command line and the reference orchestrator its demo runs.

Entry module: :mod:`telemetry.cli.main`.
"""
