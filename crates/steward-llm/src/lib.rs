//! LLM providers for Steward.
//!
//! [`OpenAiCompatible`] speaks OpenAI's chat-completions API, streamed, with
//! tool calls, to OpenAI itself or any compatible server (Ollama, vLLM,
//! llama.cpp, LM Studio, OpenRouter, …). It implements
//! [`steward_core::Llm`]: text arrives as it is generated, tool calls arrive
//! whole, and every failure is an [`steward_core::LlmError`] whose kind
//! drives retries and whose message says what went wrong and where — never
//! with the API key in it.

pub mod anthropic;
mod assemble;
mod call_log;
mod errors;
pub mod gemini;
pub mod ollama;
mod openai;
pub mod router;
mod sse;
mod sse_reader;

pub use openai::{ollama_base_url, OpenAiCompatible, OpenAiConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
