/*
 * Etsy StatsD daemon (npm package "statsd") listening on loopback only, for the
 * yolo-telemetry StatsD exporter with `flavor: etsy` (the default).
 *
 *   npm install statsd
 *   node node_modules/statsd/stats.js config/statsd/etsy-statsd.js
 *
 * Check what it received:  echo counters | nc 127.0.0.1 8126
 * Graphite is where the daemon forwards its aggregates every flushInterval; point
 * graphiteHost at yours, or swap the backend for "./backends/console" to watch.
 */
{
  address: "127.0.0.1",        // UDP metrics port: loopback only
  port: 8125,
  mgmt_address: "127.0.0.1",   // admin TCP port (counters, gauges, timers, stats)
  mgmt_port: 8126,
  flushInterval: 10000,        // ms; match exporters.statsd.flush_interval_s
  percentThreshold: [50, 90, 99],
  deleteIdleStats: true,       // forget series the orchestrator stopped reporting
  graphiteHost: "127.0.0.1",
  graphitePort: 2003,
  backends: ["./backends/graphite"]
}
