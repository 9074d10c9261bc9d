//! `confab tasks` (the outbox, for operators) and `confab serve --role worker`.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use confab_core::sign::Signer;
use confab_server::config::Config;
use confab_store::TaskState;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TasksArgs {
    #[command(subcommand)]
    cmd: Option<TasksCmd>,
    /// Only tasks in this state: queued, running, done or parked.
    #[arg(long)]
    state: Option<String>,
    /// Most tasks listed (newest first).
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Subcommand)]
enum TasksCmd {
    /// Queue a parked task again, to run now with its attempts reset.
    Retry { id: i64 },
}

fn clip(s: &str, max: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one.chars().count() <= max {
        one
    } else {
        format!("{}…", one.chars().take(max - 1).collect::<String>())
    }
}

pub async fn run(config: Config, args: TasksArgs) -> Result<()> {
    let store = crate::open_store(&config).await?;
    match args.cmd {
        Some(TasksCmd::Retry { id }) => {
            if store.retry_task(id).await? {
                println!("task {id} queued again");
                Ok(())
            } else {
                match store.task(id).await? {
                    Some(t) => bail!("task {id} is {}, not parked", t.state.as_str()),
                    None => bail!("no task {id}"),
                }
            }
        }
        None => {
            let state =
                match args.state.as_deref() {
                    Some(s) => Some(TaskState::parse(s).ok_or_else(|| {
                        anyhow!("--state must be queued, running, done or parked")
                    })?),
                    None => None,
                };
            let tasks = store
                .list_tasks(state, None, args.limit.clamp(1, 10_000))
                .await?;
            println!(
                "{:<20} {:<16} {:<8} {:>8}  {:<24} {:<50} last error",
                "id", "kind", "state", "attempts", "run at", "payload"
            );
            for t in &tasks {
                println!(
                    "{:<20} {:<16} {:<8} {:>8}  {:<24} {:<50} {}",
                    t.id,
                    t.kind,
                    t.state.as_str(),
                    t.attempts,
                    confab_core::rfc3339(t.run_at),
                    clip(&t.payload, 50),
                    clip(t.last_error.as_deref().unwrap_or("-"), 200)
                );
            }
            if tasks.is_empty() {
                println!("(no tasks)");
            }
            Ok(())
        }
    }
}

/// `confab serve --role worker`: only the task worker, no HTTP.
pub async fn run_worker(config: Config) -> Result<()> {
    let store = crate::open_store(&config).await?;
    let key = crate::secret(&config)?;
    let worker = confab_worker::standard(
        store,
        Signer::new(&key),
        &config.tasks,
        &config.mail,
        &config.webhooks,
        config.listen,
    );
    let cancel = confab_worker::CancellationToken::new();
    let run = tokio::spawn(worker.run(cancel.clone()));
    tracing::info!(data = %config.data_dir.display(), "Confab worker is up (no HTTP); stop it with Ctrl-C or SIGTERM");
    crate::shutdown_signal().await;
    cancel.cancel();
    run.await.context("worker")?;
    Ok(())
}
