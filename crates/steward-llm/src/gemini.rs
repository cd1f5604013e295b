//! The gemini provider (see the module's documentation once written).
