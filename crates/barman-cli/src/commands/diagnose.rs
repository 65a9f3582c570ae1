//! `diagnose`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::commands::{conninfo, runtime};
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show the file that sets each configuration option.
    #[arg(long = "show-config-source")]
    pub show_config_source: bool,
}

/// `barman diagnose [--show-config-source]`: one JSON document (whatever `-f` says, as
/// Barman) with the configuration, the system and every server's state; secrets
/// masked.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    let show_config_source = args.show_config_source;
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
