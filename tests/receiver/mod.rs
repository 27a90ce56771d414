//! A real HTTP receiver on loopback for the reporter tests: it counts connections, requests
//! and bytes, keeps the bodies, and answers as the test tells it to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub enum Mode {
    /// 200 with this body.
    Ok(String),
    /// This status, with an optional `Retry-After` in seconds.
    Status(u16, Option<u64>),
    /// Accept the connection and never answer.
    Hang,
}

#[derive(Default)]
pub struct Seen {
    pub connections: AtomicUsize,
    pub requests: AtomicUsize,
    pub bytes: AtomicUsize,
    pub bodies: Mutex<Vec<String>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
}

#[allow(dead_code)]
impl Receiver {
    /// A receiver on an ephemeral loopback port.
    pub fn start(mode: Mode) -> Receiver {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), mode)
    }

    /// A receiver on a given listener (to come back on the same port).
    pub fn start_on(listener: TcpListener, mode: Mode) -> Receiver {
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Seen::default());
        let mode = Arc::new(Mutex::new(mode));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, m, st) = (seen.clone(), mode.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !st.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        s.connections.fetch_add(1, Ordering::Relaxed);
                        let (s, mode) = (s.clone(), m.lock().unwrap().clone());
                        let st = st.clone();
                        std::thread::spawn(move || serve(stream, &s, mode, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Receiver {
            addr,
            seen,
            mode,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/v1/report", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::Relaxed)
    }

    pub fn bodies(&self) -> Vec<String> {
        self.seen.bodies.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, seen: &Seen, mode: Mode, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    let mut header_bytes = 0;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(n) => header_bytes += n,
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    seen.requests.fetch_add(1, Ordering::Relaxed);
    seen.bytes
        .fetch_add(header_bytes + length, Ordering::Relaxed);
    seen.bodies
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    let mut stream = stream;
    let answer = match mode {
        Mode::Ok(body) => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        Mode::Status(code, retry_after) => {
            let retry = retry_after
                .map(|s| format!("retry-after: {s}\r\n"))
                .unwrap_or_default();
            format!("HTTP/1.1 {code} Nope\r\n{retry}content-length: 0\r\nconnection: close\r\n\r\n")
        }
        Mode::Hang => {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
    };
    let _ = stream.write_all(answer.as_bytes());
}

/// Waits (at most 10 s) for `done`.
#[allow(dead_code)]
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `reporter` has looked at its schedule at `clock`'s current time, then for one
/// more pass, so that anything due at that time has been started and finished.
#[allow(dead_code)]
pub fn settle(
    reporter: &telemetry_core::reporter::Reporter,
    clock: &telemetry_core::reporter::FakeClock,
) {
    let now = telemetry_core::reporter::Clock::now(clock);
    eventually("the reporter to catch up with the clock", || {
        reporter.status().observed >= now
    });
    std::thread::sleep(Duration::from_millis(30));
    eventually("the reporter to be idle", || {
        reporter.status().observed >= now
    });
}
