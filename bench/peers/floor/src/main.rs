//! The floor of fan-out: a single-threaded epoll server that answers any
//! `GET` with an event-stream head and, for every `POST`, writes the body
//! as one `data:` frame to every open `GET` socket with one `write` each.
//! No topics, ids, history, authorization or tasks: what is left of a hub
//! when everything but the kernel's send path is taken away. `bench/run`
//! measures it beside Herald (issue 17).
//!
//! Usage: `floor 127.0.0.1:PORT` (listen backlog 65535).
//!
//! A subscriber whose socket cannot take a frame whole is dropped (a floor
//! does not queue); at the benchmarks' rates no socket fills.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    subscriber: bool,
}

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18085".into())
        .parse()
        .expect("usage: floor 127.0.0.1:PORT");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(65535)?;
    socket.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(socket.into());
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!("floor listening on {addr}");

    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut subscribers: Vec<Token> = Vec::new();
    let mut next = 1;
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut frame = Vec::new();
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let token = Token(next);
                            next += 1;
                            poll.registry()
                                .register(&mut stream, token, Interest::READABLE)?;
                            conns.insert(token, Conn { stream, buf: Vec::new(), subscriber: false });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let token = event.token();
            let Some(conn) = conns.get_mut(&token) else { continue };
            let mut closed = false;
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            // Every complete request in the buffer (publishers pipeline).
            let mut posts: Vec<Vec<u8>> = Vec::new();
            while let Some(end) = find(&conn.buf, b"\r\n\r\n") {
                let head = &conn.buf[..end];
                if head.starts_with(b"GET ") {
                    conn.buf.drain(..end + 4);
                    conn.subscriber = true;
                    if conn.stream.write_all(HEAD).is_err() {
                        closed = true;
                    }
                    subscribers.push(token);
                    continue;
                }
                let length = content_length(head).unwrap_or(0);
                if conn.buf.len() < end + 4 + length {
                    break; // the body is still coming
                }
                posts.push(conn.buf[end + 4..end + 4 + length].to_vec());
                conn.buf.drain(..end + 4 + length);
                if conn.stream.write_all(ANSWER).is_err() {
                    closed = true;
                }
            }
            for body in posts {
                frame.clear();
                frame.extend_from_slice(b"data: ");
                frame.extend_from_slice(&body);
                frame.extend_from_slice(b"\n\n");
                subscribers.retain(|sub| {
                    let Some(conn) = conns.get_mut(sub) else { return false };
                    // One write per subscriber; a partial one drops it.
                    matches!(conn.stream.write(&frame), Ok(n) if n == frame.len())
                });
            }
            if closed {
                if let Some(mut conn) = conns.remove(&token) {
                    let _ = poll.registry().deregister(&mut conn.stream);
                    if conn.subscriber {
                        subscribers.retain(|sub| *sub != token);
                    }
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}
