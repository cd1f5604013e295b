//! Tests of the gemini provider against the scripted server.
