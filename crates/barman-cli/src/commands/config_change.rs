//! `barman config-switch` and `barman config-update`.

use std::process::ExitCode;

use barman_core::config::update::{self, ModelSwitch};
use barman_core::config::{Config, FsSource};

use crate::{Context, fail};

/// The arguments of `config-switch`.
#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    /// The server whose configuration the model overrides.
    pub server: String,
    /// The model to apply (not with --reset).
    pub model: Option<String>,
    /// Remove the server's active model (a model named is then ignored, as in Barman).
    #[arg(long)]
    pub reset: bool,
}

/// The arguments of `config-update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The changes, as JSON: a list of objects with `scope` (`server` or `model`),
    /// `server_name` or `model_name`, and the options to set.
    pub json_changes: String,
}

/// `barman config-switch SERVER MODEL | --reset`.
pub fn switch(ctx: &Context, args: &SwitchArgs) -> ExitCode {
    let model = match (&args.model, args.reset) {
        (_, true) => None,
        (Some(m), false) => Some(m.as_str()),
        (None, false) => return fail("Either a model name or '--reset' flag need to be given"),
    };
    let server = &args.server;
    match update::switch_model(&ctx.config, server, model) {
        Ok(ModelSwitch::Reset) => {
            ctx.info(format!(
                "Resetting the active model for the server {server}"
            ));
        }
        Ok(ModelSwitch::AlreadyActive) => {
            ctx.info(format!(
                "Model '{}' is already active for server '{server}', skipping...",
                model.unwrap_or_default()
            ));
            return ExitCode::SUCCESS;
        }
        Ok(ModelSwitch::Applied(changed)) => {
            let m = model.unwrap_or_default();
            ctx.info(format!("Applying model '{m}' to server '{server}'"));
            for (option, old, new) in changed {
                let (old, new) = (
                    update::shown_value(&option, &old),
                    update::shown_value(&option, &new),
                );
                ctx.info(format!(
                    "Changing value of option '{option}' for server '{server}' from '{old}' to '{new}' through the model '{m}'"
                ));
            }
        }
        Ok(_) => {}
        Err(e) => return fail(e),
    }
    restart_processes(ctx, std::slice::from_ref(server))
}

/// `barman config-update JSON`: queues the changes, then applies the queue.
pub fn update(ctx: &Context, args: &UpdateArgs) -> ExitCode {
    let sets = match update::parse_changes(&ctx.config, &args.json_changes) {
        Ok(s) => s,
        Err(e) => {
            crate::error(e);
            return fail("Aborting config-update: nothing was changed");
        }
    };
    if let Err(e) = update::enqueue(&ctx.config, &sets) {
        return fail(e);
    }
    match apply(ctx) {
        Ok(sections) => restart_processes(ctx, &sections),
        Err(code) => code,
    }
}

/// Applies the queued changes, printing each; the sections changed.
pub(crate) fn apply(ctx: &Context) -> Result<Vec<String>, ExitCode> {
    match update::apply_queue(&ctx.config) {
        Ok(applied) => {
            let mut sections: Vec<String> = Vec::new();
            for c in applied {
                ctx.info(format!(
                    "Changing value of option '{}' for section '{}' from '{}' to '{}' through config-update.",
                    c.key,
                    c.section,
                    update::shown_value(&c.key, c.old.as_deref().unwrap_or("None")),
                    update::shown_value(&c.key, &c.new)
                ));
                if !sections.contains(&c.section) {
                    sections.push(c.section);
                }
            }
            Ok(sections)
        }
        Err(e) if e.refusal() == Some(barman_core::Refusal::Busy) => {
            crate::warning(e);
            Ok(Vec::new())
        }
        Err(e) => {
            crate::error("Unable to process a set of changes. Exiting.");
            Err(fail(e))
        }
    }
}

/// Barman's `restart_processes` for each changed server, with the configuration as it
/// is now: its receive-wal stopped, and started again if `streaming_archiver` is on.
fn restart_processes(ctx: &Context, sections: &[String]) -> ExitCode {
    let path = std::path::PathBuf::from(&ctx.config.global().config_file);
    let config = match Config::load_file(&path, &FsSource::from_env()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut code = ExitCode::SUCCESS;
    for name in sections {
        let Some(sc) = config.server(name) else {
            continue;
        };
        let running = barman_core::processes::list(config.global(), sc)
            .map(|l| l.iter().any(|p| p.task == "receive-wal"))
            .unwrap_or(false);
        if running {
            match barman_core::processes::terminate(config.global(), sc, "receive-wal") {
                Ok(pid) => ctx.info(format!("Stopped process receive-wal({pid})")),
                Err(e) => code = fail(format!("server {name}: {e}")),
            }
        }
        if sc.streaming_archiver() && sc.disabled().is_none() && sc.active() {
            ctx.info(format!("Starting streaming archiver for server {name}"));
            if let Err(e) = crate::commands::cron::start_receive_wal(ctx, name, false) {
                code = fail(format!("server {name}: cannot start receive-wal: {e}"));
            }
        }
    }
    code
}
