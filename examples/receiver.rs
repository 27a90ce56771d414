//! A minimal report receiver for trying the reporter locally: listens on a loopback address,
//! prints each report it receives, answers with a version notice, and stops after the given
//! number of reports (default 1) or 10 minutes. A report it has seen before (the same
//! `report_id`: sent again after a crash) is acknowledged and not counted twice, as a
//! collector must do with at-least-once delivery.
//!
//! ```text
//! cargo run --example receiver -- 127.0.0.1:4318 [REPORTS]
//! ```

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:4318".to_owned());
    let wanted: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let listener = TcpListener::bind(&addr)?;
    if !listener.local_addr()?.ip().is_loopback() {
        return Err("the receiver only listens on loopback addresses".into());
    }
    eprintln!(
        "receiver: listening on http://{}/v1/report",
        listener.local_addr()?
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut received = 0;
    let mut seen = HashSet::new();
    for stream in listener.incoming() {
        let mut stream = stream?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        let id = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|report| report["report_id"].as_str().map(str::to_owned));
        let fresh = id.is_none_or(|id| seen.insert(id));
        if fresh {
            println!("{}", String::from_utf8_lossy(&body));
        } else {
            eprintln!("receiver: a report received before, acknowledged again");
        }
        let answer = r#"{"latest_version":"1.0.1"}"#;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        )?;
        received += usize::from(fresh);
        if received >= wanted || Instant::now() > deadline {
            break;
        }
    }
    eprintln!("receiver: {received} report(s) received");
    Ok(())
}
