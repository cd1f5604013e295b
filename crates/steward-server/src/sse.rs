//! Server-Sent Events responses built from a stream of frames.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::Stream;

/// One `data:` frame (OpenAI style, no event name).
pub fn data(json: &str) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

/// A named event frame.
pub fn event(name: &str, json: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

pub fn response(
    frames: impl Stream<Item = Bytes> + Send + 'static,
    extra: Vec<(&'static str, HeaderValue)>,
) -> Response {
    use futures::StreamExt;
    let mut response = Response::new(Body::from_stream(frames.map(Ok::<_, Infallible>)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells reverse proxies such as nginx not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    for (name, value) in extra {
        headers.insert(name, value);
    }
    response
}
