//! Network namespaces the tests make for themselves (as root: CI is), joined by veth links: a
//! "pod" with its own network stack, and peers around it ("client", "node") that reach it over
//! real interfaces with their own addresses, so that the adaptive drain reads a real kernel's
//! sockets. Addresses are in 198.18.0.0/15 (RFC 2544's benchmark range) and exist only inside
//! these namespaces; every namespace is deleted when its [`Net`] is dropped.
//!
//! A thread joins a namespace with `setns(2)`, which moves only the calling thread: servers and
//! clients are plain std sockets on threads, and [`Net::command`] starts a process inside one.

#![allow(dead_code)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A peer namespace linked to the pod.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The namespace's name (`ip netns`).
    pub name: String,
    /// The peer's address.
    pub addr: Ipv4Addr,
    /// The pod's address on the link to this peer.
    pub pod_addr: Ipv4Addr,
}

/// A pod namespace and its peers.
pub struct Net {
    /// The pod's namespace.
    pub pod: String,
    /// The peers, in the order asked for.
    pub peers: Vec<Peer>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {args:?}: {e} (the tests need iproute2, as root)"));
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// A pod with one link per named peer.
    pub fn new(peers: &[&str]) -> Net {
        assert!(
            podgrace_test_process::is_root(),
            "network namespace tests run as root (CI does)"
        );
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pod = format!("pg{id}-pod");
        ip(&["netns", "add", &pod]);
        ip(&["-n", &pod, "link", "set", "lo", "up"]);
        let net_index = NEXT.fetch_add(1, Ordering::Relaxed) % 200;
        let mut net = Net {
            pod,
            peers: Vec::new(),
        };
        for (i, peer) in peers.iter().enumerate() {
            let name = format!("pg{id}-{peer}");
            ip(&["netns", "add", &name]);
            net.peers.push(Peer {
                name: name.clone(),
                addr: Ipv4Addr::new(198, 18, net_index as u8, (i as u8) * 4 + 2),
                pod_addr: Ipv4Addr::new(198, 18, net_index as u8, (i as u8) * 4 + 1),
            });
            let p = net.peers.last().unwrap().clone();
            let (a, b) = (format!("pga{i}"), format!("pgb{i}"));
            ip(&[
                "-n", &net.pod, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns",
                &name,
            ]);
            ip(&[
                "-n",
                &net.pod,
                "addr",
                "add",
                &format!("{}/30", p.pod_addr),
                "dev",
                &a,
            ]);
            ip(&["-n", &net.pod, "link", "set", &a, "up"]);
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{}/30", p.addr),
                "dev",
                &b,
            ]);
            ip(&["-n", &name, "link", "set", &b, "up"]);
            ip(&["-n", &name, "link", "set", "lo", "up"]);
        }
        net
    }

    /// The peer named `name`.
    pub fn peer(&self, name: &str) -> &Peer {
        self.peers
            .iter()
            .find(|p| p.name.ends_with(&format!("-{name}")))
            .unwrap_or_else(|| panic!("no peer {name}"))
    }

    /// The pod's address as `peer` reaches it.
    pub fn pod_addr(&self, peer: &str, port: u16) -> SocketAddr {
        SocketAddr::from((self.peer(peer).pod_addr, port))
    }

    /// Runs `f` on a new thread inside namespace `ns`.
    pub fn spawn<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let file = File::open(format!("/run/netns/{ns}")).expect("namespace file");
        std::thread::spawn(move || {
            podgrace_test_process::enter_netns(&file).expect("setns");
            f()
        })
    }

    /// `program` started inside namespace `ns`, as user and group 65532 with no capabilities
    /// and no way to gain any (what Pod Security `restricted` leaves a container).
    pub fn command(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let file = File::open(format!("/run/netns/{ns}")).expect("namespace file");
        let mut cmd = super::child::command(program);
        podgrace_test_process::in_netns_unprivileged(&mut cmd, file, 65532);
        cmd
    }

    /// Makes `cmd` unable to open netlink sockets, as a stricter seccomp profile than the
    /// runtime's default would (`socket(AF_NETLINK, …)` fails with EPERM).
    pub fn deny_netlink(cmd: &mut Command) {
        podgrace_test_process::deny_netlink(cmd);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in std::iter::once(&self.pod).chain(self.peers.iter().map(|p| &p.name)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
