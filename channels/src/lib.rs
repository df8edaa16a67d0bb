//! # switchboard-channels
//!
//! One adapter per messaging provider behind one trait: WhatsApp Cloud API,
//! WeChat Official Account, SMS (Twilio-compatible) and Telegram, with inbound
//! signature verification, idempotent ingest and outbound retry.
//!
//! Not built yet: this crate is reserved by the workspace layout and exports
//! nothing. Web chat, the one channel that works today, lives in the gateway
//! because it is served by the gateway's own HTTP/WebSocket edge.
