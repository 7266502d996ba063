/*
 * The same daemon taking metrics over TCP, for `protocol: tcp` in the exporter
 * (no datagram loss; the exporter reconnects with backoff when the daemon restarts).
 */
{
  servers: [{ server: "./servers/tcp", address: "127.0.0.1", port: 8125 }],
  mgmt_address: "127.0.0.1",
  mgmt_port: 8126,
  flushInterval: 10000,
  deleteIdleStats: true,
  graphiteHost: "127.0.0.1",
  graphitePort: 2003,
  backends: ["./backends/graphite"]
}
