//! The engine model: iteration-level (continuous) batching under a KV-cache capacity.
//!
//! [`Core`] is a pure state machine with no clock: [`Core::plan`] chooses what the next
//! step does (which waiting requests are admitted and prefilled, which running ones are
//! preempted, which decode) and how long it takes; [`Core::finish_step`] applies it (every
//! member gains one token). Two drivers run the same core:
//! - [`realtime`], an OS thread that owns the core, takes requests over a channel,
//!   sleeps each step's duration and sends each token to its request's channel when the
//!   step ends (the HTTP handler writes it to the client);
//! - [`simulate`], a discrete-event loop in virtual time (no sleeping): a 1000-request
//!   trace runs in milliseconds, exactly and deterministically. It is used to calibrate
//!   profiles and to test the model against analytic values.
//!
//! Why a single owner and channels: the scheduler is inherently sequential (one GPU
//! runs one batch at a time), so a lock-free single owner is both the simplest and the
//! fastest design; HTTP handlers never block it (unbounded token channels), and a handler
//! whose client went away is noticed when its channel is closed and its request freed.
//!
//! Layout: [`scheduler`] (the state machine), [`step`] (planning and finishing a step)
//! and [`admission`] (each 2023 policy's rule), `v1` (vLLM's V1 scheduler: chunked
//! prefill under one token budget per step),
//! [`prefix`] (the automatic prefix cache), [`clock`], and the two drivers,
//! [`realtime`] and [`virtual_time`]. Use runs one way: drivers -> scheduler ->
//! admission, prefix; this module only gathers them.

pub mod admission;
pub mod clock;
pub mod prefix;
pub mod realtime;
pub mod scheduler;
pub mod step;
mod v1;
pub mod virtual_time;

pub use clock::Clock;
pub use realtime::{EngineEvent, Submission};
pub use scheduler::{Core, CoreStats, Emit, EngineRequest, Step};
pub use virtual_time::{VirtualRequest, VirtualResult, simulate};
