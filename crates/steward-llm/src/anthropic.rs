//! The anthropic provider (see the module's documentation once written).
