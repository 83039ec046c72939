#![allow(clippy::unwrap_used)] // tests fail loudly by design
mod detectors;
mod endpoint;
mod engine;
mod hardening;
mod live;
