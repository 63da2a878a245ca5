//! `llmib analyze` (not built yet: see the open issues).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`llmib analyze` is not available yet")
}
