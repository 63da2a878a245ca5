//! One module per subcommand: flags and wiring only; the work is in the library crates.

pub mod analyze;
pub mod demo;
pub mod export;
pub mod generate;
pub mod import;
pub mod replay;
pub mod run;
pub mod sim;
pub mod trace;

/// The multi-threaded tokio runtime the network commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A stop handle wired to Ctrl-C: the first stops dispatching (in-flight requests get a
/// grace period), the second cancels everything in flight. Logs are completed either way.
pub fn stop_on_ctrl_c(rt: &tokio::runtime::Runtime) -> replayer::StopHandle {
    let stop = replayer::StopHandle::new();
    let s = stop.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupt: stopping dispatch; in-flight requests get a grace period (Ctrl-C again to cancel them)");
            s.stop();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupt: cancelling in-flight requests");
                s.abort();
            }
        }
    });
    stop
}
