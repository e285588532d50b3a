//! The operator's word before anything is sent: the number of devices, typed on the terminal.

use std::io::{IsTerminal, Write};

use anyhow::{Context, bail};

/// Asks for the number of devices on the terminal. The read blocks, so it runs on a thread of
/// its own: a signal meanwhile still ends the run.
pub async fn confirm(count: usize) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || ask(count))
        .await
        .context("the confirmation prompt failed")?
}

fn ask(count: usize) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to change {count} devices without confirmation: stdin is not a terminal (pass --yes)"
        );
    }
    eprint!("Type {count} to confirm: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if line.trim() != count.to_string() {
        bail!("not confirmed; nothing was sent");
    }
    Ok(())
}
