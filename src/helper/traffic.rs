//! What counts as traffic during an adaptive drain: a pure classifier of the pod's TCP sockets,
//! fed with what the kernel reports (`sock_diag.rs`), so that every rule here is tested without
//! a network.
//!
//! Traffic is what reaches the pod's serving ports from outside the pod: a new inbound
//! connection, and (under [`Counted::All`]) data received on a connection already open. Not
//! traffic:
//! - the pod's own loopback traffic between its containers (a peer on 127/8 or `::1`, or on the
//!   pod's own address);
//! - the app's outbound connections (their local port is not a listening port of the pod);
//! - ports the policy lists as not serving traffic (metrics scrapes);
//! - the kubelet's probes. A probe is told apart by its port (one a readiness or liveness probe
//!   targets), its cadence (no more new connections from one address than the probes of that
//!   port make in their periods) and its shape (a new, short connection carrying at most one
//!   small request). The source address alone proves nothing: NodePort and LoadBalancer
//!   Services with `externalTrafficPolicy: Cluster`, hairpin traffic and host-network clients
//!   arrive from node addresses too, and they exceed the probes' cadence or shape.
//!
//! Connections are keyed by their 4-tuple, which a connection keeps through every state
//! (established, closing, `TIME_WAIT`), so that a short connection seen once in a dump and
//! again when it is destroyed counts once.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Bytes a probe's connection may carry: an `httpGet` request with a few headers, a gRPC
/// health check (connection preface, settings, one small call). Larger is a request.
pub const PROBE_BYTES: u64 = 2048;
/// How long a probe's connection may stay open (the kubelet's timeout is 1 s by default).
pub const PROBE_LIFETIME: Duration = Duration::from_secs(5);
/// Headroom on the probes' cadence: timers drift, and a container restart re-runs probes.
const CADENCE_SLACK: f64 = 1.25;
/// Connections forgotten this long after they closed (longer than `TIME_WAIT`, 60 s on Linux,
/// so that a dump still listing one never counts it again).
const FORGET_AFTER: Duration = Duration::from_secs(90);

/// Which traffic keeps a drain going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// New connections and data received on open ones (clients that balance over their own
    /// instance list reuse pooled connections: their requests are the signal that they still
    /// route to the pod).
    All,
    /// New connections only: data on connections already open is left to the app's graceful
    /// shutdown, which closes them.
    NewConnections,
}

/// A probe of the pod's (readiness or liveness; startup probes are over once a pod runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Probe {
    /// The port it connects to.
    pub port: u16,
    /// Its `periodSeconds`.
    pub period: Duration,
}

/// Which sockets the drain watches.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// The serving ports; empty: every listening port but `ignored`.
    pub ports: BTreeSet<u16>,
    /// Ports that never count (metrics, and other containers' ports when `ports` is empty).
    pub ignored: BTreeSet<u16>,
    /// The pod's probes.
    pub probes: Vec<Probe>,
    /// What counts.
    pub counted: Counted,
}

/// TCP states, as the kernel numbers them (`include/net/tcp_states.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// `TCP_LISTEN`.
    Listen,
    /// A handshake in progress (`SYN_RECV`, `NEW_SYN_RECV`, `SYN_SENT`): seen again once
    /// established, or never if it fails.
    Handshake,
    /// Established or closing: the connection exists.
    Open,
    /// `TIME_WAIT` or `CLOSE`: it existed.
    Closed,
}

impl TcpState {
    /// From the kernel's number.
    pub fn from_kernel(state: u8) -> TcpState {
        match state {
            10 => TcpState::Listen,
            2 | 3 | 12 => TcpState::Handshake,
            6 | 7 => TcpState::Closed,
            _ => TcpState::Open,
        }
    }
}

/// One TCP socket as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socket {
    /// The pod's end.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
    /// Its state.
    pub state: TcpState,
    /// `tcpi_bytes_received`, where the kernel reports it (4.1+, full sockets only); it counts
    /// the peer's FIN as a byte.
    pub bytes_received: Option<u64>,
    /// `tcpi_data_segs_in` (4.6+): segments that carried data, which a FIN alone does not.
    pub data_segments: Option<u32>,
    /// `tcpi_last_data_recv`: how long ago data last arrived.
    pub idle: Option<Duration>,
}

/// What one observation found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// When the latest traffic arrived, if any did.
    pub traffic: Option<Instant>,
}

impl Seen {
    fn at(&mut self, t: Instant) {
        self.traffic = Some(self.traffic.map_or(t, |old| old.max(t)));
    }
}

/// Running totals, for the helper's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// New inbound connections counted as traffic.
    pub connections: u64,
    /// Bytes received on counted connections during the drain.
    pub bytes: u64,
    /// Connections taken for probes and not counted.
    pub probes: u64,
}

#[derive(Clone, Copy, Debug)]
struct Connection {
    first_seen: Instant,
    last_seen: Instant,
    bytes: u64,
    segments: u32,
    probe: bool,
    closed: bool,
}

impl Connection {
    fn first(now: Instant, s: &Socket, probe: bool, closed: bool) -> Self {
        Connection {
            first_seen: now,
            last_seen: now,
            bytes: s.bytes_received.unwrap_or(0),
            segments: s.data_segments.unwrap_or(0),
            probe,
            closed,
        }
    }
}

/// A token bucket per probing address and port: the probes of a port may open one connection
/// each per period; what exceeds that cadence is traffic.
#[derive(Clone, Copy, Debug)]
struct Cadence {
    tokens: f64,
    at: Instant,
}

/// The classifier's state over one drain.
#[derive(Debug)]
pub struct Monitor {
    scope: Scope,
    listening: BTreeSet<u16>,
    connections: HashMap<(SocketAddr, SocketAddr), Connection>,
    cadence: HashMap<(IpAddr, u16), Cadence>,
    baseline: bool,
    totals: Totals,
}

impl Monitor {
    /// A monitor for `scope`; the first [`Monitor::dump`] is the baseline (connections open
    /// before the drain started are not new; their idle time is read).
    pub fn new(scope: Scope) -> Self {
        Monitor {
            scope,
            listening: BTreeSet::new(),
            connections: HashMap::new(),
            cadence: HashMap::new(),
            baseline: true,
            totals: Totals::default(),
        }
    }

    /// The totals so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// The ports being watched, for the report: the serving ports, or the listening ones.
    pub fn watched_ports(&self) -> Vec<u16> {
        if self.scope.ports.is_empty() {
            self.listening
                .difference(&self.scope.ignored)
                .copied()
                .collect()
        } else {
            self.scope.ports.iter().copied().collect()
        }
    }

    /// Every socket of the pod's network namespace at `now`.
    pub fn dump(&mut self, now: Instant, sockets: &[Socket]) -> Seen {
        // Listening ports first: an accepted connection is recognised by its local port.
        self.listening.extend(
            sockets
                .iter()
                .filter(|s| s.state == TcpState::Listen)
                .map(|s| s.local.port()),
        );
        let mut seen = Seen::default();
        for s in sockets {
            self.observe(now, s, false, &mut seen);
        }
        self.baseline = false;
        self.forget(now);
        seen
    }

    /// A socket the kernel destroyed, in its last state: how a connection that opened and
    /// closed between two dumps is seen at all.
    pub fn destroyed(&mut self, now: Instant, socket: &Socket) -> Seen {
        let mut seen = Seen::default();
        self.observe(now, socket, true, &mut seen);
        seen
    }

    /// Whether `s` is an inbound connection to a watched port from outside the pod.
    fn inbound(&self, s: &Socket) -> bool {
        let port = s.local.port();
        let watched = if self.scope.ports.is_empty() {
            self.listening.contains(&port)
        } else {
            self.scope.ports.contains(&port)
        };
        let remote = s.remote.ip().to_canonical();
        watched
            && !self.scope.ignored.contains(&port)
            && s.remote.port() != 0
            && !remote.is_loopback()
            && remote != s.local.ip().to_canonical()
    }

    fn observe(&mut self, now: Instant, s: &Socket, destroyed: bool, seen: &mut Seen) {
        if matches!(s.state, TcpState::Listen | TcpState::Handshake) || !self.inbound(s) {
            return;
        }
        let key = (canonical(s.local), canonical(s.remote));
        let bytes = s.bytes_received;
        let closed = destroyed || s.state == TcpState::Closed;
        match self.connections.get_mut(&key) {
            Some(c) => {
                c.last_seen = now;
                c.closed |= closed;
                let delta = bytes.map_or(0, |b| b.saturating_sub(c.bytes));
                if let Some(b) = bytes {
                    c.bytes = c.bytes.max(b);
                }
                // Data arrived: a segment that carried some (a client closing its idle
                // connection sends a FIN, which is no request); without the counter (before
                // 4.6), more than the FIN's one byte.
                let data = match s.data_segments {
                    Some(n) => {
                        let more = n > c.segments;
                        c.segments = c.segments.max(n);
                        more
                    }
                    None => delta > 1,
                };
                if c.probe
                    && (c.bytes > PROBE_BYTES
                        || (!c.closed && now.duration_since(c.first_seen) > PROBE_LIFETIME))
                {
                    // Not a probe's shape after all: a request, counted now.
                    c.probe = false;
                    self.totals.probes -= 1;
                    self.totals.connections += 1;
                    self.totals.bytes += c.bytes;
                    seen.at(now);
                } else if data && !c.probe && self.scope.counted == Counted::All {
                    self.totals.bytes += delta;
                    seen.at(now);
                }
            }
            None if self.baseline => {
                // Open before the drain began: not new; its data counts from its idle time.
                let probe = self.probe_port(s.local.port()) && bytes.unwrap_or(0) <= PROBE_BYTES;
                if !probe
                    && self.scope.counted == Counted::All
                    && let Some(idle) = s.idle
                    && s.state == TcpState::Open
                {
                    // (Data older than the clock's origin is long past any quiet period.)
                    if let Some(at) = now.checked_sub(idle) {
                        seen.at(at);
                    }
                }
                self.connections
                    .insert(key, Connection::first(now, s, probe, closed));
            }
            None => {
                let small = bytes.unwrap_or(0) <= PROBE_BYTES;
                let probe = small && self.take_probe_slot(now, key.1.ip(), s.local.port());
                if probe {
                    self.totals.probes += 1;
                } else {
                    self.totals.connections += 1;
                    self.totals.bytes += bytes.unwrap_or(0);
                    seen.at(now);
                }
                self.connections
                    .insert(key, Connection::first(now, s, probe, closed));
            }
        }
    }

    fn probe_port(&self, port: u16) -> bool {
        self.scope.probes.iter().any(|p| p.port == port)
    }

    /// Takes a probe's place in the cadence of `(address, port)`, if one is free.
    fn take_probe_slot(&mut self, now: Instant, from: IpAddr, port: u16) -> bool {
        let (count, rate) = self
            .scope
            .probes
            .iter()
            .filter(|p| p.port == port && !p.period.is_zero())
            .fold((0u32, 0f64), |(n, r), p| {
                (n + 1, r + 1.0 / p.period.as_secs_f64())
            });
        if count == 0 {
            return false;
        }
        // Every probe of the port may fire at once, and one more for a timer's drift.
        let capacity = f64::from(count) + 1.0;
        let bucket = self.cadence.entry((from, port)).or_insert(Cadence {
            tokens: capacity,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate * CADENCE_SLACK;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops connections closed long enough ago that no dump lists them any more.
    fn forget(&mut self, now: Instant) {
        self.connections
            .retain(|_, c| !(c.closed && now.duration_since(c.last_seen) > FORGET_AFTER));
    }
}

/// IPv4 peers of a dual-stack listener appear as `::ffff:a.b.c.d`; one spelling per address.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "10.0.0.5";
    const NODE: &str = "10.0.0.1";
    const CLIENT: &str = "10.0.1.9";

    fn scope(ports: &[u16], probes: &[(u16, u64)], counted: Counted) -> Scope {
        Scope {
            ports: ports.iter().copied().collect(),
            ignored: BTreeSet::new(),
            probes: probes
                .iter()
                .map(|&(port, s)| Probe {
                    port,
                    period: Duration::from_secs(s),
                })
                .collect(),
            counted,
        }
    }

    fn listen(port: u16) -> Socket {
        Socket {
            local: format!("0.0.0.0:{port}").parse().unwrap(),
            remote: "0.0.0.0:0".parse().unwrap(),
            state: TcpState::Listen,
            bytes_received: None,
            data_segments: None,
            idle: None,
        }
    }

    fn conn(local_port: u16, from: &str, from_port: u16, bytes: u64) -> Socket {
        Socket {
            local: format!("{POD}:{local_port}").parse().unwrap(),
            remote: format!("{from}:{from_port}").parse().unwrap(),
            state: TcpState::Open,
            bytes_received: Some(bytes),
            data_segments: Some(u32::try_from(bytes.div_ceil(100)).unwrap()),
            idle: Some(Duration::from_secs(60)),
        }
    }

    fn later(t: Instant, ms: u64) -> Instant {
        t + Duration::from_millis(ms)
    }

    #[test]
    fn a_new_inbound_connection_is_traffic() {
        let t = Instant::now();
        let mut m = Monitor::new(scope(&[8080], &[], Counted::All));
        assert_eq!(m.dump(t, &[listen(8080)]).traffic, None);
        let seen = m.dump(
            later(t, 100),
            &[listen(8080), conn(8080, CLIENT, 40000, 90)],
        );
        assert_eq!(seen.traffic, Some(later(t, 100)));
        assert_eq!(m.totals().connections, 1);
    }

    #[test]
    fn connections_open_before_the_drain_are_not_new_and_idle_ones_are_quiet() {
        let t = Instant::now();
        let mut m = Monitor::new(scope(&[8080], &[], Counted::All));
        let idle = conn(8080, CLIENT, 40000, 500);
        // Its last data, a minute before the drain, is all it reports.
        let last = m.dump(t, &[idle]).traffic;
        assert!(last.is_none_or(|at| t.duration_since(at) >= Duration::from_secs(60)));
        assert_eq!(m.dump(later(t, 100), &[idle]).traffic, None);
        assert_eq!(m.totals().connections, 0);
    }

    #[test]
    fn a_connection_busy_when_the_drain_starts_counts_from_its_last_data() {
        let t = later(Instant::now(), 10_000);
        let mut m = Monitor::new(scope(&[8080], &[], Counted::All));
        let mut busy = conn(8080, CLIENT, 40000, 500);
        busy.idle = Some(Duration::from_millis(200));
        assert_eq!(
            m.dump(t, &[busy]).traffic,
            Some(t - Duration::from_millis(200))
        );
    }

    #[test]
    fn data_on_an_open_connection_counts_unless_only_new_connections_do() {
        let t = Instant::now();
        for (counted, expected) in [
            (Counted::All, Some(later(t, 200))),
            (Counted::NewConnections, None),
        ] {
            let mut m = Monitor::new(scope(&[8080], &[], counted));
            m.dump(t, &[conn(8080, CLIENT, 40000, 500)]);
            let seen = m.dump(later(t, 200), &[conn(8080, CLIENT, 40000, 900)]);
            assert_eq!(seen.traffic, expected, "{counted:?}");
        }
    }

    #[test]
    fn a_client_closing_its_idle_connection_is_not_traffic() {
        let t = Instant::now();
        let mut m = Monitor::new(scope(&[8080], &[], Counted::All));
        let idle = conn(8080, CLIENT, 40000, 500);
        m.dump(t, &[idle]);
        // The FIN counts as a byte received, but carries no data.
        let mut fin = idle;
        fin.bytes_received = Some(501);
        fin.state = TcpState::Closed;
        assert_eq!(m.destroyed(later(t, 100), &fin).traffic, None);
    }

    #[test]
    fn loopback_own_address_outbound_and_ignored_ports_are_not_traffic() {
        let t = Instant::now();
        let mut s = scope(&[], &[], Counted::All);
        s.ignored.insert(9090);
        let mut m = Monitor::new(s);
        m.dump(t, &[listen(8080), listen(9090)]);
        let mut outbound = conn(41000, "10.9.9.9", 8080, 100);
        outbound.remote = "10.9.9.9:8080".parse().unwrap();
        let mut local = conn(8080, "127.0.0.1", 40001, 100);
        local.local = "127.0.0.1:8080".parse().unwrap();
        let own = conn(8080, POD, 40002, 100);
        let mapped = Socket {
            local: "[::ffff:127.0.0.1]:8080".parse().unwrap(),
            remote: "[::ffff:127.0.0.1]:40003".parse().unwrap(),
            ..conn(8080, CLIENT, 1, 100)
        };
        let metrics = conn(9090, CLIENT, 40004, 100);
        let seen = m.dump(
            later(t, 100),
            &[
                listen(8080),
                listen(9090),
                outbound,
                local,
                own,
                mapped,
                metrics,
            ],
        );
        assert_eq!(seen.traffic, None);
        assert_eq!(m.watched_ports(), vec![8080]);
    }

    #[test]
    fn probes_at_their_cadence_are_not_traffic_but_more_from_the_same_address_are() {
        let t = Instant::now();
        let mut m = Monitor::new(scope(&[8080], &[(8080, 1)], Counted::All));
        m.dump(t, &[listen(8080)]);
        // One probe a second for ten seconds: never traffic.
        for i in 1..=10u16 {
            let seen = m.destroyed(
                later(t, u64::from(i) * 1000),
                &conn(8080, NODE, 50000 + i, 120),
            );
            assert_eq!(seen.traffic, None, "probe {i}");
        }
        assert_eq!(m.totals().probes, 10);
        // A NodePort client from the same node address at 20 requests a second: traffic.
        let counted = (0..20u16)
            .filter(|i| {
                m.destroyed(
                    later(t, 10_000 + u64::from(*i) * 50),
                    &conn(8080, NODE, 51000 + i, 120),
                )
                .traffic
                .is_some()
            })
            .count();
        assert!(counted >= 17, "{counted} of 20 counted");
    }

    #[test]
    fn a_connection_on_a_probe_port_that_outgrows_a_probe_is_counted() {
        let t = Instant::now();
        let mut m = Monitor::new(scope(&[8080], &[(8080, 10)], Counted::All));
        m.dump(t, &[listen(8080)]);
        let first = m.dump(later(t, 100), &[conn(8080, NODE, 50000, 100)]);
        assert_eq!(first.traffic, None);
        // Large upload: a request, not a probe.
        let big = m.dump(later(t, 200), &[conn(8080, NODE, 50000, 100_000)]);
        assert_eq!(big.traffic, Some(later(t, 200)));
        // Open longer than any probe: a client holding a connection.
        let held = m.dump(later(t, 300), &[conn(8080, NODE, 50001, 10)]);
        assert_eq!(held.traffic, None);
        let seen = m.dump(later(t, 6_000), &[conn(8080, NODE, 50001, 10)]);
        assert_eq!(seen.traffic, Some(later(t, 6_000)));
        assert_eq!(m.totals().probes, 0);
    }

    #[test]
    fn a_connection_seen_in_a_dump_and_again_destroyed_counts_once() {
        let t = Instant::now();
        let mut m = Monitor::new(scope(&[8080], &[], Counted::NewConnections));
        m.dump(t, &[listen(8080)]);
        let c = conn(8080, CLIENT, 40000, 90);
        assert!(m.dump(later(t, 100), &[c]).traffic.is_some());
        assert_eq!(m.destroyed(later(t, 150), &c).traffic, None);
        let mut tw = c;
        tw.state = TcpState::Closed;
        tw.bytes_received = None;
        tw.data_segments = None;
        assert_eq!(m.dump(later(t, 200), &[tw]).traffic, None);
        assert_eq!(m.totals().connections, 1);
    }

    #[test]
    fn handshakes_are_counted_once_established() {
        let t = Instant::now();
        let mut m = Monitor::new(scope(&[8080], &[], Counted::All));
        m.dump(t, &[listen(8080)]);
        let mut syn = conn(8080, CLIENT, 40000, 0);
        syn.state = TcpState::Handshake;
        assert_eq!(m.dump(later(t, 100), &[syn]).traffic, None);
        let est = conn(8080, CLIENT, 40000, 0);
        assert!(m.dump(later(t, 200), &[est]).traffic.is_some());
    }
}
