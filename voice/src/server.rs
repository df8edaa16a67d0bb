//! Tokio glue for the sans-IO endpoint and media sessions.
