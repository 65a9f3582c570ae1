//! `barman status`.

use std::process::ExitCode;

use barman_core::check::{self, RepoState};
use serde_json::{Map, Value};

use crate::commands::{connect, runtime, selected_for_report};
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server names.
    #[arg(required = true)]
    pub servers: Vec<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    status(ctx, &args.servers)
}

/// `barman status SERVER...`.
fn status(ctx: &Context, names: &[String]) -> ExitCode {
    let servers = match selected_for_report(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = runtime();
    let mut doc = Map::new();
    for s in servers {
        let repo = RepoState::inspect(
            ctx.config.global(),
            s,
            jiff::Timestamp::now(),
            &jiff::tz::TimeZone::system(),
        );
        let remote = rt.block_on(async {
            match connect(s).await {
                Ok(server) => Some(server.remote_status(s.options().slot_name.as_deref()).await),
                Err(_) => None,
            }
        });
        ctx.out(format!("Server {}:", s.name()));
        let mut obj = Map::new();
        for item in check::status(s, remote.as_ref(), &repo) {
            ctx.out(format!("\t{}: {}", item.label, item.value));
            obj.insert(item.key.to_owned(), Value::String(item.value));
        }
        doc.insert(s.name().to_owned(), Value::Object(obj));
    }
    ctx.json(&Value::Object(doc));
    ExitCode::SUCCESS
}
