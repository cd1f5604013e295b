//! Tests of the anthropic provider against the scripted server.
