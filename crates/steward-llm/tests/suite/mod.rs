mod anthropic;
mod common;
mod errors;
mod gemini;
mod ollama;
mod streaming;
mod tracing;
