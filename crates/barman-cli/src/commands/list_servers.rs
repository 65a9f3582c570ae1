//! `barman list-servers`.

use std::process::ExitCode;

use serde_json::{Map, Value, json};

use crate::Context;
use crate::commands::description;

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print only the names.
    #[arg(long)]
    pub minimal: bool,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    list(ctx, args.minimal)
}

/// `barman list-servers [--minimal]`: every configured server, sorted by name.
fn list(ctx: &Context, minimal: bool) -> ExitCode {
    let mut names: Vec<&str> = ctx.config.server_names().collect();
    names.sort_unstable();
    let mut doc = Map::new();
    for name in names {
        let d = description(ctx, name);
        if minimal || d.is_empty() {
            ctx.out(name);
        } else {
            ctx.out(format!("{name} - {d}"));
        }
        doc.insert(name.to_owned(), json!({ "description": d }));
    }
    ctx.json(&Value::Object(doc));
    ExitCode::SUCCESS
}
