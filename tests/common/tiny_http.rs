//! The smallest HTTP/1.1 server and client the drain's tests and its rollout benchmark need:
//! keep-alive, a fixed two-byte answer, a thread per connection, and a server that can exit at
//! once (its connections close within 50 ms of the flag), as an app without graceful shutdown
//! does on SIGTERM.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Accepts on `listener` until `stop`, then closes it (new connections are refused).
pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>) {
    listener.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                let stop = stop.clone();
                std::thread::spawn(move || answer(s, &stop));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Answers every request on `stream` until the client closes it or `stop`.
fn answer(stream: TcpStream, stop: &AtomicBool) {
    // Wakes up to see the exit; the connection's thread closes it then.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let mut line = String::new();
    loop {
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            // A timeout keeps what was read of the line; the next call goes on with it.
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) if line == "\r\n" => {
                    line.clear();
                    break;
                }
                Ok(_) => line.clear(),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// One request on `stream`; whether it was answered.
pub fn request(stream: &mut TcpStream) -> bool {
    if stream
        .write_all(b"GET / HTTP/1.1\r\nhost: pod\r\nuser-agent: test\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 40 {
        match stream.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    true
}
