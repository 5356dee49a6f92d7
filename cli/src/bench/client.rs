//! The load generator's HTTP: a minimal HTTP/1.1 keep-alive client for submissions, so that
//! the generator spends as little CPU per request as possible (it shares the machine with
//! the nodes it measures), and a `ureq` agent without an overall timeout for the long
//! downloads (events, the chain log). Short reads go through [`crate::client`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// How long a request may wait for its answer before the connection is dropped.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer body read; a submission's answer is a few hundred bytes.
const ANSWER_BYTES_MAX: usize = 64 * 1024;

/// One keep-alive connection to a node's API, reopened after any error.
pub struct Connection {
    address: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    /// A connection to `address` (`127.0.0.1:PORT`), opened on first use.
    pub fn new(address: &str) -> Connection {
        Connection {
            address: address.to_string(),
            stream: None,
        }
    }

    /// POSTs a JSON `body` to `path`; the status code and the answer's body.
    pub fn post(&mut self, path: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        let result = self.exchange(path, body);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange(&mut self, path: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.address)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
            self.stream = Some(BufReader::new(stream));
        }
        let reader = self.stream.as_mut().expect("opened above");

        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.address,
            body.len()
        );
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);
        reader.get_mut().write_all(&request)?;

        read_answer(reader)
    }
}

/// Reads one HTTP/1.1 answer with a `Content-Length` body.
fn read_answer(reader: &mut BufReader<TcpStream>) -> io::Result<(u16, Vec<u8>)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status line"))?;

    let mut length = 0usize;
    let mut close = false;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("headers cut short"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().map_err(|_| bad("bad content-length"))?;
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    if length > ANSWER_BYTES_MAX {
        return Err(bad("answer too large"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if close {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "server closed",
        ));
    }
    Ok((status, body))
}

/// The `code` of a JSON error answer, or the status code as text.
pub fn refusal_code(status: u16, body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("http_{status}"))
}

/// An agent for short GETs and long downloads, without an overall timeout.
pub fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build();
    ureq::Agent::new_with_config(config)
}
