//! `confab switches`: list, set and reset feature switches (see `confab_core::switch`).
//!
//! It opens the server's service (as `confab admin` does), so a change is written to the
//! control data and announced on the configured bus: with Redis every node applies it within a
//! second; on the embedded SQLite file a running server (another process) picks it up with its
//! periodic reload, within 5 s.

use crate::announced;
use anyhow::{anyhow, Result};
use clap::Subcommand;
use confab_core::switch::{Percent, SwitchName};
use confab_server::config::Config;
use confab_server::service::SwitchChange;

#[derive(Subcommand)]
pub enum SwitchesCmd {
    /// Every switch: its records (scope, value, selectors, who changed it and when).
    List,
    /// Set a switch's record in a scope: `confab switches set realtime on --percent 10`.
    Set {
        /// posting, realtime, signups or gravatar.
        name: String,
        /// The value for the requests the selectors match (all, without selectors).
        #[arg(value_parser = ["on", "off"])]
        value: String,
        /// Selector: this share of readers (1-100), by a stable bucket of the reader.
        #[arg(long)]
        percent: Option<i64>,
        /// The record is for this forum only (default: global).
        #[arg(long)]
        forum: Option<String>,
        /// Selector: staff.
        #[arg(long)]
        staff: bool,
    },
    /// Delete a switch's record in a scope (the wider scope, or the default ON, decides again).
    Reset {
        name: String,
        #[arg(long)]
        forum: Option<String>,
    },
}

/// Who a change from the command line is recorded as.
fn changed_by() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("cli:{user}")
}

pub async fn run(mut config: Config, cmd: SwitchesCmd) -> Result<()> {
    config.demo_forum = false;
    let (server, _) = crate::open(&config).await?;
    let svc = server.service();
    let err = |e: confab_core::DomainError| anyhow!("{e}");
    match cmd {
        SwitchesCmd::List => {
            let all = svc.switches();
            println!(
                "{:<10} {:<20} {:<5} {:<12} {:<20} when",
                "name", "scope", "value", "selectors", "changed by"
            );
            for name in SwitchName::ALL {
                let mine: Vec<_> = all.iter().filter(|s| s.record.name == name).collect();
                if !mine.iter().any(|s| s.record.forum.is_none()) {
                    println!(
                        "{:<10} {:<20} {:<5} {:<12} {:<20} -",
                        name.as_str(),
                        "global",
                        "on",
                        "",
                        "(default)"
                    );
                }
                for s in mine {
                    let r = &s.record;
                    println!(
                        "{:<10} {:<20} {:<5} {:<12} {:<20} {}",
                        name.as_str(),
                        s.forum
                            .as_deref()
                            .map_or_else(|| "global".to_string(), |f| format!("forum {f}")),
                        if r.on { "on" } else { "off" },
                        r.selectors(),
                        r.changed_by,
                        confab_core::rfc3339(r.changed_at)
                    );
                }
            }
        }
        SwitchesCmd::Set {
            name,
            value,
            percent,
            forum,
            staff,
        } => {
            let change = SwitchChange {
                name: SwitchName::parse(&name).map_err(err)?,
                forum,
                on: value == "on",
                percent: percent.map(Percent::parse).transpose().map_err(err)?,
                staff,
            };
            let s = svc.set_switch(change, &changed_by()).await.map_err(err)?;
            announced(svc).await;
            let r = &s.record;
            let sel = r.selectors();
            println!(
                "switch {} {} {}{}",
                r.name,
                if r.on { "on" } else { "off" },
                s.forum
                    .as_deref()
                    .map_or_else(|| "(global)".to_string(), |f| format!("for forum {f}")),
                if sel.is_empty() {
                    String::new()
                } else {
                    format!(" for {sel}, the opposite for the rest")
                }
            );
        }
        SwitchesCmd::Reset { name, forum } => {
            let name = SwitchName::parse(&name).map_err(err)?;
            svc.reset_switch(name, forum.as_deref(), &changed_by())
                .await
                .map_err(err)?;
            announced(svc).await;
            println!(
                "switch {name} reset {}",
                forum
                    .as_deref()
                    .map_or_else(|| "(global)".to_string(), |f| format!("for forum {f}"))
            );
        }
    }
    Ok(())
}
