// Package metrics exposes stompd's Prometheus metrics: the collectors, the typed label values that
// the rest of the server passes in, and the HTTP handler that serves a scrape.
//
// [New] registers every collector on the registry it is given; the server builds that registry in
// cmd and passes it down, so two servers (or two tests) in one process never share state. The
// methods of [*Metrics] sit on the per-frame and per-delivery paths and cost a few nanoseconds; a
// nil *Metrics turns metrics off, so packages under test need no registry.
//
// Gauges that mirror the broker's size (subscriptions, destinations, queued messages) are not
// updated on the hot path. They are read at scrape time from a snapshot function given to
// [Metrics.ObserveBroker], once per scrape.
//
// The message counters (published, delivered, redelivered, dropped) come from the same snapshot.
// Only the broker sees every message, those of in-process publishers included, so it counts them
// itself with atomics and this package reads its totals once per scrape: a fan-out to a thousand
// subscribers costs the server no metrics call at all. [BrokerStats] documents how its fields map
// to the broker's.
//
// # Per-queue depth
//
// stompd_queue_messages is a total over all queues. An operator who needs the depth of particular
// queues names them, and the server passes that list to [Metrics.ObserveQueueDepth]; each listed
// queue that exists becomes two series of stompd_queue_depth{queue, state}. Queues are created by
// clients, so a queue label is allowed only for names the operator wrote down: the series count is
// bounded by the configuration, never by client traffic. There is no per-object endpoint.
//
// # Invariants
//
//  1. Nothing registers on prometheus.DefaultRegisterer. Two [New] calls on two registries work in
//     one process; a second [New] on the same registry panics, as prometheus.MustRegister does.
//  2. Every label value is a member of a closed enum of this package (the typed constants below)
//     or an operator-configured queue name. No destination, login, session id or other
//     client-controlled string ever becomes a label value.
//  3. Each (metric, label values) child is resolved once in [New] into an array indexed by the
//     enum. Recording a sample is an array index, an interface call and an atomic update: no
//     WithLabelValues, no map lookup, no allocation, no lock. Scrape-time metrics are built
//     by one collector per source, each registered once in [New], so no metric name has two
//     owners.
//  4. Every method is safe on a nil *Metrics and safe for concurrent use. An out-of-range enum
//     value (only reachable by a conversion) is ignored rather than panicking in a server path.
//  5. Counters are process-global and only rise; they never restart when a connection closes.
//     The broker-sourced ones rise as long as the function given to [Metrics.ObserveBroker]
//     reports totals of one broker; every label value is exported, at 0 until something happens.
//  6. The package starts no goroutines.
package metrics
