//! The wire formats other than OpenAI's, each rendering a scripted
//! [`crate::Reply`] the way that provider's API would.

pub(crate) mod anthropic;
pub(crate) mod gemini;
pub(crate) mod ollama;
