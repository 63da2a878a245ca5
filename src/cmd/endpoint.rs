//! The flags of every command that talks to a server (`replay`, `run`, `sweep`,
//! `search`): the API key, TLS trust and the connection pool's idle timeout, declared
//! once and flattened into each command, so they read and check alike everywhere. The
//! `--endpoint` flag itself stays with each command: `replay` requires it, `run` lets
//! it replace the suite's, `sweep` and `search` take it or `--simulate`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args)]
pub struct EndpointArgs {
    /// Environment variable holding an API key, sent as `Authorization: Bearer` to any
    /// backend (default: OPENAI_API_KEY for the openai backends, when set). Never logged.
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// PEM file of certificates to trust for an https:// endpoint besides the built-in
    /// (Mozilla) and system roots: a private CA or a self-signed server certificate.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's TLS certificate (prints a warning; recorded in every
    /// run log's header).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds a kept-alive connection may stay idle in the pool before it is dropped,
    /// never reused after (default 4: below the 5 s keep-alive timeout of uvicorn and
    /// llama.cpp's server, so no request goes out on a connection being closed).
    #[arg(long, value_name = "S")]
    pub pool_idle_timeout: Option<f64>,
}

impl EndpointArgs {
    /// The key in `--api-key-env` (an error when that variable is not set); without the
    /// flag, OPENAI_API_KEY when `openai` (the backend is an OpenAI one) and it is set.
    pub fn api_key(&self, default_env: Option<&str>) -> anyhow::Result<Option<String>> {
        match (&self.api_key_env, default_env) {
            (Some(name), _) => Ok(Some(std::env::var(name).with_context(|| {
                format!("--api-key-env: environment variable {name} is not set")
            })?)),
            (None, Some(env)) => Ok(std::env::var(env).ok().filter(|k| !k.is_empty())),
            (None, None) => Ok(None),
        }
    }

    /// The TLS options; with `--insecure`, prints the warning that ends with `recorded`
    /// (where the choice is recorded, e.g. " (recorded in the run log)").
    pub fn tls(&self, recorded: &str) -> replayer::TlsOptions {
        if self.insecure {
            eprintln!(
                "warning: --insecure: the server's TLS certificate is not verified{recorded}"
            );
        }
        replayer::TlsOptions {
            cacert: self.cacert.clone(),
            insecure: self.insecure,
        }
    }

    /// `--pool-idle-timeout`: a positive number of seconds, when given.
    pub fn pool_idle_timeout(&self) -> anyhow::Result<Option<Duration>> {
        self.pool_idle_timeout
            .map(|s| {
                let d = Duration::try_from_secs_f64(s).ok().with_context(
                    || "--pool-idle-timeout must be a non-negative number of seconds",
                )?;
                anyhow::ensure!(
                    !d.is_zero(),
                    "--pool-idle-timeout must be greater than 0 seconds"
                );
                Ok(d)
            })
            .transpose()
    }
}
