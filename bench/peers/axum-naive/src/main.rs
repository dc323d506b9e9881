//! The naive axum SSE hub, as a tutorial writes it: one
//! `tokio::sync::broadcast` channel (capacity 1024) for every topic, each
//! subscriber filtering by topic behind `axum::response::sse::Sse`.
//!
//! `POST /publish?topic=T` with the event data as the body;
//! `GET /sse?topic=T` streams it. Usage: `axum-naive 127.0.0.1:PORT`.
//! The listen backlog is 65535, like the other peers'.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{Stream, StreamExt as _};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

type Bus = broadcast::Sender<Arc<(String, String)>>;

async fn publish(
    State(bus): State<Bus>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> &'static str {
    let topic = query.get("topic").cloned().unwrap_or_default();
    let _ = bus.send(Arc::new((topic, body)));
    "ok"
}

async fn subscribe(
    State(bus): State<Bus>,
    Query(query): Query<HashMap<String, String>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let topic = query.get("topic").cloned().unwrap_or_default();
    let stream = BroadcastStream::new(bus.subscribe()).filter_map(move |message| {
        let event = match message {
            Ok(message) if message.0 == topic => Some(Ok(Event::default().data(message.1.as_str()))),
            _ => None,
        };
        std::future::ready(event)
    });
    Sse::new(stream)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3001".into())
        .parse()
        .expect("usage: axum-naive ADDR");
    let (bus, _) = broadcast::channel(1024);
    let app = Router::new()
        .route("/publish", post(publish))
        .route("/sse", get(subscribe))
        .with_state(bus);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(65535)?;
    eprintln!("axum-naive listening on {addr}");
    axum::serve(listener, app).await
}
