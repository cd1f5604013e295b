mod common;
mod errors;
mod streaming;
mod tracing;
