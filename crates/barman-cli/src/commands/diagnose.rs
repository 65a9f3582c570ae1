//! `diagnose`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::commands::server::{conninfo, runtime};
use crate::{Context, fail};

/// `barman diagnose [--show-config-source]`: one JSON document (whatever `-f` says, as
/// Barman) with the configuration, the system and every server's state; secrets
/// masked.
pub fn exec(ctx: &Context, show_config_source: bool) -> ExitCode {
    let conninfos: BTreeMap<String, Result<_, String>> = ctx
        .config
        .servers()
        .iter()
        .map(|s| (s.name().to_owned(), conninfo(s)))
        .collect();
    let doc = runtime().block_on(barman_core::diagnose::diagnose(
        &ctx.config,
        &conninfos,
        show_config_source,
    ));
    match serde_json::to_string_pretty(&doc) {
        Ok(text) => {
            if !ctx.quiet {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot render the diagnosis: {e}")),
    }
}
