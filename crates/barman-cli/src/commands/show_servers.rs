//! `barman show-servers`.

use std::process::ExitCode;

use serde_json::{Map, Value};

use crate::commands::description;
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
    show(ctx, &args.servers)
}

/// `barman show-servers SERVER...` (`all` for every server): every option, sorted.
fn show(ctx: &Context, servers: &[String]) -> ExitCode {
    let mut names: Vec<String> = if servers.iter().any(|s| s == "all") {
        ctx.config.server_names().map(str::to_owned).collect()
    } else {
        servers.to_vec()
    };
    names.sort_unstable();
    let mut doc = Map::new();
    for name in &names {
        let Some(s) = ctx.config.server(name) else {
            return fail(format!("unknown server '{name}'"));
        };
        let d = description(ctx, name);
        ctx.out(if d.is_empty() {
            format!("Server {name}:")
        } else {
            format!("Server {name} {d}:")
        });
        let mut opts: Vec<(String, String)> = s
            .iter()
            .map(|(spec, v)| {
                (
                    spec.name.to_owned(),
                    v.map_or_else(|| "None".to_owned(), ToString::to_string),
                )
            })
            .collect();
        opts.push(("name".to_owned(), name.clone()));
        opts.sort();
        let mut obj = Map::new();
        for (k, v) in opts {
            ctx.out(format!("\t{k}: {v}"));
            obj.insert(
                k,
                if v == "None" {
                    Value::Null
                } else {
                    Value::String(v)
                },
            );
        }
        doc.insert(name.clone(), Value::Object(obj));
    }
    ctx.json(&Value::Object(doc));
    ExitCode::SUCCESS
}
