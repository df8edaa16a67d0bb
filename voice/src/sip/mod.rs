//! SIP signalling: message model and parser, transactions, digest
//! authentication and the sans-IO user-agent [`endpoint`].

pub mod auth;
pub mod endpoint;
pub mod message;
pub mod transaction;
