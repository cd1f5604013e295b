//! The ollama provider (see the module's documentation once written).
