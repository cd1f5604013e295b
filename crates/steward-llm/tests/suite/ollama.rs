//! Tests of the ollama provider against the scripted server.
