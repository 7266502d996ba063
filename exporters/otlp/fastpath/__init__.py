"""The OTLP fast path: requests encoded straight to protobuf bytes and sent over a plain
HTTP/1.1 transport, plugged into the OpenTelemetry SDK exporters. See README.md here for
every SDK internal it relies on and the versions it is tested with.
"""
