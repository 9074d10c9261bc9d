//! API tests: each test spawns a real server (port 0, temp data dir) and drives it over HTTP.
//! One test binary for the whole suite (link time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backend;
mod helpers;
mod pg;
mod process;
mod smtp;

mod accounts;
mod bad_input;
mod bans;
mod challenge;
mod comments;
mod drain;
mod durability;
mod export;
mod feeds;
mod fleet;
mod gdpr;
mod hardening;
mod hardening_low;
mod i18n;
mod import;
mod import_formats;
mod import_upload;
mod layout;
mod live;
mod mail;
mod metrics;
mod moderation;
mod notify;
mod oidc;
mod paging;
mod pictures;
mod queries;
mod reactions;
mod recovery;
mod rules;
mod schema;
mod sharding;
mod shards_cli;
mod spam;
mod sso;
mod switches;
mod tasks;
mod thread_moves;
mod webhooks;
