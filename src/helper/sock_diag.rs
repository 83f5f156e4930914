//! The pod's TCP sockets, read from the kernel through sock_diag netlink (what `ss` uses), the one
//! source an unprivileged container can read that has per-connection counters: it runs as any
//! user with every capability dropped, under seccomp `RuntimeDefault` (which allows netlink
//! sockets) and with a read-only root filesystem (no files are opened), and sees exactly the
//! sockets of its own network namespace, which every container of the pod shares.
//!
//! Two channels: a dump of every socket with its `tcp_info` (`tcpi_bytes_received`,
//! `tcpi_last_data_recv`), taken each tick; and the destroy events of the sock_diag multicast
//! groups, which report every TCP socket the kernel frees with its final counters, so that a
//! connection opened and closed between two ticks is seen too. `/proc/net/tcp` has no counters
//! and `/proc/net/snmp` no ports; neither tells a probe from a request.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_sys::{Socket as NetlinkSocket, SocketAddr as NetlinkAddr, protocols};

use super::traffic::{Socket, TcpState};

/// sock_diag's multicast groups of destroyed TCP sockets (`SKNLGRP_INET_TCP_DESTROY` = 1,
/// `SKNLGRP_INET6_TCP_DESTROY` = 3), as the bitmask `bind` takes (group n is bit n - 1).
const DESTROY_GROUPS: u32 = 0b101;
/// Offsets in `struct tcp_info`, whose layout only ever grows at its end.
const LAST_DATA_RECV: usize = 52;
const BYTES_RECEIVED: usize = 128;
const DATA_SEGS_IN: usize = 152;

/// An open reader of the namespace's TCP sockets.
pub struct SockDiag {
    dump: NetlinkSocket,
    destroy: Option<NetlinkSocket>,
    buffer: Vec<u8>,
    sequence: u32,
}

/// What the destroy channel had.
#[derive(Debug, Default)]
pub struct Destroyed {
    /// The sockets destroyed since the last read.
    pub sockets: Vec<Socket>,
    /// The kernel dropped events (the receive buffer overflowed): something happened unseen.
    pub lost: bool,
}

impl SockDiag {
    /// Opens the dump channel, and the destroy channel where the kernel allows it (without it,
    /// connections shorter than a tick can be missed: `destroy_error` says why).
    pub fn open() -> io::Result<(SockDiag, Option<io::Error>)> {
        let mut dump = NetlinkSocket::new(protocols::NETLINK_SOCK_DIAG)?;
        dump.bind_auto()?;
        dump.connect(&NetlinkAddr::new(0, 0))?;
        let (destroy, destroy_error) = match destroy_channel() {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        };
        let mut reader = SockDiag {
            dump,
            destroy,
            buffer: vec![0; 64 * 1024],
            sequence: 0,
        };
        // A first dump proves the channel works (no inet_diag module, a seccomp filter, …).
        reader.dump()?;
        Ok((reader, destroy_error))
    }

    /// Every TCP socket of the namespace (IPv4 and IPv6), with its counters.
    pub fn dump(&mut self) -> io::Result<Vec<Socket>> {
        let mut sockets = Vec::new();
        for family in [AF_INET, AF_INET6] {
            self.dump_family(family, &mut sockets)?;
        }
        Ok(sockets)
    }

    fn dump_family(&mut self, family: u8, out: &mut Vec<Socket>) -> io::Result<()> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::INFO,
                // Handshakes are seen once established; everything else is asked for.
                states: StateFlags::all() - StateFlags::SYN_SENT - StateFlags::SYN_RECV,
                socket_id: if family == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            })
            .into(),
        );
        packet.finalize();
        let mut request = vec![0; packet.buffer_len()];
        packet.serialize(&mut request);
        self.dump.send(&request, 0)?;
        loop {
            let size = self.dump.recv(&mut &mut self.buffer[..], 0)?;
            let mut done = false;
            for_each_message(&self.buffer[..size], |payload| match payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    out.extend(socket(&r));
                    Ok(())
                }
                NetlinkPayload::Done(_) => {
                    done = true;
                    Ok(())
                }
                NetlinkPayload::Error(e) => Err(e.to_io()),
                _ => Ok(()),
            })?;
            if done {
                return Ok(());
            }
        }
    }

    /// The sockets destroyed since the last call (none without the destroy channel).
    pub fn destroyed(&mut self) -> Destroyed {
        let mut out = Destroyed::default();
        let Some(channel) = &self.destroy else {
            return out;
        };
        loop {
            match channel.recv(&mut &mut self.buffer[..], 0) {
                Ok(size) => {
                    let _ = for_each_message(&self.buffer[..size], |payload| {
                        if let NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) =
                            payload
                        {
                            out.sockets.extend(socket(&r));
                        }
                        Ok(())
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
                // ENOBUFS: the kernel dropped events; the next read goes on after them.
                Err(_) => out.lost = true,
            }
        }
    }

    /// Whether destroyed sockets are reported.
    #[cfg(test)]
    pub(crate) fn sees_destroyed(&self) -> bool {
        self.destroy.is_some()
    }
}

fn destroy_channel() -> io::Result<NetlinkSocket> {
    let mut s = NetlinkSocket::new(protocols::NETLINK_SOCK_DIAG)?;
    s.bind(&NetlinkAddr::new(0, DESTROY_GROUPS))?;
    s.set_non_blocking(true)?;
    // A burst of short connections between two ticks; the kernel caps this at rmem_max.
    let _ = s.set_rx_buf_sz(4 * 1024 * 1024);
    Ok(s)
}

/// Calls `f` on each message of one datagram.
fn for_each_message(
    mut bytes: &[u8],
    mut f: impl FnMut(NetlinkPayload<SockDiagMessage>) -> io::Result<()>,
) -> io::Result<()> {
    while !bytes.is_empty() {
        let message = NetlinkMessage::<SockDiagMessage>::deserialize(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let length = message.header.length as usize;
        f(message.payload)?;
        // Messages are 4-byte aligned.
        let step = length.div_ceil(4) * 4;
        if length == 0 || step > bytes.len() {
            break;
        }
        bytes = &bytes[step..];
    }
    Ok(())
}

fn socket(r: &InetResponse) -> Option<Socket> {
    let id = &r.header.socket_id;
    let info = r.nlas.iter().find_map(|n| match n {
        Nla::TcpInfo(bytes) => Some(bytes.as_slice()),
        _ => None,
    });
    let u32_at = |offset: usize| {
        info.and_then(|b| b.get(offset..offset + 4))
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap_or_default()))
    };
    let u64_at = |offset: usize| {
        info.and_then(|b| b.get(offset..offset + 8))
            .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))
    };
    Some(Socket {
        local: SocketAddr::new(id.source_address, id.source_port),
        remote: SocketAddr::new(id.destination_address, id.destination_port),
        state: TcpState::from_kernel(r.header.state),
        bytes_received: u64_at(BYTES_RECEIVED),
        data_segments: u32_at(DATA_SEGS_IN),
        idle: u32_at(LAST_DATA_RECV).map(|ms| Duration::from_millis(u64::from(ms))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// The kernel's counters, read back through the real netlink socket: the offsets in
    /// `tcp_info` and the address decoding are right (this runs in the test's own network
    /// namespace, on loopback).
    #[test]
    fn reports_a_real_connection_with_its_received_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(&[7u8; 1234]).unwrap();
        let mut buf = [0u8; 1234];
        server.read_exact(&mut buf).unwrap();
        let client_port = client.local_addr().unwrap().port();

        let (mut diag, _) = SockDiag::open().unwrap();
        let sockets = diag.dump().unwrap();
        let accepted = sockets
            .iter()
            .find(|s| s.local.port() == port && s.remote.port() == client_port)
            .expect("the accepted connection is listed");
        assert_eq!(accepted.state, TcpState::Open);
        assert_eq!(accepted.bytes_received, Some(1234));
        assert_eq!(accepted.data_segments, Some(1));
        assert!(accepted.idle.unwrap() < Duration::from_secs(5));
        assert!(
            sockets
                .iter()
                .any(|s| s.local.port() == port && s.state == TcpState::Listen)
        );

        // Closed, and reported by the destroy channel with its final counters (the peer's FIN
        // is one more byte received, and no data segment).
        drop(server);
        drop(client);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while std::time::Instant::now() < deadline
            && !seen
                .iter()
                .any(|s: &Socket| s.local.port() == port && s.remote.port() == client_port)
        {
            seen.extend(diag.destroyed().sockets);
            std::thread::sleep(Duration::from_millis(20));
        }
        // Every kernel this runs on (4.x and later) has the destroy groups, for any user.
        assert!(diag.sees_destroyed(), "no destroy channel");
        let last = seen
            .iter()
            .find(|s| s.local.port() == port && s.remote.port() == client_port)
            .unwrap_or_else(|| panic!("destroyed socket not reported: {seen:?}"));
        assert_eq!(last.bytes_received, Some(1235));
        assert_eq!(last.data_segments, Some(1));
    }
}
