//! What `barman-wal-archive` and `barman-wal-restore` share. They use the light
//! `barman-client` crate only (not barman-cli's library, which links barman-core): they
//! run once per WAL segment.

/// The options `barman-wal-archive` and `barman-wal-restore` share: how to reach the
/// Barman host, and which server to ask for.
#[derive(Debug, clap::Args)]
pub(crate) struct BarmanHostArgs {
    /// The user of the SSH connection to the Barman host.
    #[arg(short = 'U', long = "user", default_value = "barman")]
    pub(crate) user: String,
    /// The port of the SSH connection to the Barman host.
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// The Barman configuration file on the Barman host.
    #[arg(short = 'c', long = "config")]
    pub(crate) config: Option<String>,
    /// (barman-rs) The ssh program and options to use.
    #[arg(long = "ssh-command", default_value = "ssh")]
    pub(crate) ssh_command: String,
    /// (barman-rs) The barman command on the Barman host.
    #[arg(long = "barman-command", default_value = "barman")]
    pub(crate) barman_command: String,
    /// The Barman host.
    pub(crate) barman_host: String,
    /// The server name in Barman's configuration.
    pub(crate) server_name: String,
}

impl BarmanHostArgs {
    /// The client library's description of the Barman host.
    pub(crate) fn into_host(self) -> barman_client::BarmanHost {
        let mut h = barman_client::BarmanHost::new(&self.barman_host, &self.server_name);
        h.user = self.user;
        h.port = self.port;
        h.config = self.config;
        h.ssh = self.ssh_command;
        h.barman_command = self.barman_command;
        h
    }
}
