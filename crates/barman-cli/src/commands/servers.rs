//! `list-servers`, `show-servers`.

use std::process::ExitCode;

use serde_json::{Map, Value, json};

use crate::{Context, fail};

fn description(ctx: &Context, name: &str) -> String {
    let Some(s) = ctx.config.server(name) else {
        return String::new();
    };
    let mut d = s.options().description.clone().unwrap_or_default();
    if !s.active() {
        d.push_str(" (inactive)");
    }
    if s.is_passive() {
        d.push_str(" (Passive)");
    }
    d.trim().to_owned()
}

/// `barman list-servers [--minimal]`: every configured server, sorted by name.
pub fn list(ctx: &Context, minimal: bool) -> ExitCode {
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

/// `barman show-servers SERVER...` (`all` for every server): every option, sorted.
pub fn show(ctx: &Context, servers: &[String]) -> ExitCode {
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
