//! The `shoal` command line: the server's flags and config file
//! ([`args`], read into a [`crate::config::Config`]) and the operator's
//! subcommands (`shoal cache ...`, `shoal credential ...`, `shoal cert
//! ...` in [`certs`]), the client side
//! of the admin endpoint (`crate::admin`).
//!
//! [`Cli`] embeds [`Subcommand`] as
//! `#[command(subcommand)] command: Option<Subcommand>`; when one is given,
//! `main.rs` exits with [`run_subcommand`]'s code instead of starting the
//! server.
//!
//! Every subcommand takes `--admin ADDR` (default `127.0.0.1:11299`;
//! `https://HOST:PORT` with `--admin-ca FILE` for an endpoint serving
//! HTTPS) and `--data-dir DIR` (default `./shoal-data`). The operator token comes from
//! `SHOAL_ADMIN_TOKEN` when set, else from `DIR/operator.token`, which the
//! server writes on its first start. `--json` prints the API's JSON answer
//! instead of text.

pub mod args;
pub mod certs;
pub mod client;
mod print;
pub mod tls_args;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::builder::BoolishValueParser;
use clap::{ArgGroup, Args};
use serde_json::json;

pub use args::Cli;
use client::segment;
pub use client::AdminClient;

use crate::admin::parse_memory;
use crate::config::{DEFAULT_ADMIN_ADDR, DEFAULT_DATA_DIR};
use crate::tenancy::OPERATOR_TOKEN_FILE;

/// The environment variable that overrides the token file.
pub const TOKEN_ENV: &str = "SHOAL_ADMIN_TOKEN";

/// The operator subcommands of the `shoal` binary.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Subcommand {
    /// Manage caches on a running multi-tenant server
    Cache(CacheArgs),
    /// Manage a cache's credentials on a running multi-tenant server
    Credential(CredentialArgs),
    /// Manage the TLS client certificates that log in as a credential
    Cert(certs::CertArgs),
    /// See and drain the nodes of a cluster (--control-plane)
    Node(NodeArgs),
}

/// How to reach the admin endpoint; accepted after any subcommand.
#[derive(Args, Debug, Clone)]
pub struct AdminArgs {
    /// address of the server's admin endpoint
    #[arg(long = "admin", value_name = "ADDR", default_value = DEFAULT_ADMIN_ADDR, global = true)]
    pub admin: String,
    /// the server's data directory, where operator.token is read from
    /// (SHOAL_ADMIN_TOKEN overrides the file) [default: ./shoal-data]
    #[arg(long = "data-dir", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// print the API's JSON answer instead of text
    #[arg(long = "json", global = true)]
    pub json: bool,
    /// PEM certificate(s) to trust for an https:// --admin address (the
    /// endpoint's --admin-tls-cert, or the CA that signed it)
    #[arg(long = "admin-ca", value_name = "FILE", global = true)]
    pub admin_ca: Option<PathBuf>,
}

impl AdminArgs {
    /// The data directory in effect: `--data-dir`, else `./shoal-data`.
    pub fn data_dir(&self) -> &Path {
        self.data_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_DATA_DIR))
    }
}

impl Subcommand {
    /// The connection options, e.g. for `main.rs` to fill `data_dir` from a
    /// top-level `--data-dir` given before the subcommand
    /// (`shoal --data-dir D cache list`) when none was given after it.
    pub fn admin_mut(&mut self) -> &mut AdminArgs {
        match self {
            Subcommand::Cache(c) => &mut c.admin,
            Subcommand::Credential(c) => &mut c.admin,
            Subcommand::Cert(c) => &mut c.admin,
            Subcommand::Node(c) => &mut c.admin,
        }
    }
}

/// `shoal node ...`
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub command: NodeCmd,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum NodeCmd {
    /// List the cluster's nodes: state, caches, memory, last heartbeat
    List,
    /// Drain a node: it leaves the discovery list at once, then stops after its drain grace
    Drain {
        /// the node's name (its advertised host:port unless --node-name was given)
        name: String,
    },
}

/// `shoal cache ...`
#[derive(Args, Debug, Clone)]
pub struct CacheArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub command: CacheCmd,
}

/// `shoal credential ...`
#[derive(Args, Debug, Clone)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub command: CredentialCmd,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum CacheCmd {
    /// Create a cache; prints its id and the MEMCACHIER_* lines for its application
    Create {
        /// a unique label for the cache
        #[arg(long)]
        name: String,
        /// the memory plan: bytes, or a size such as 25MB, 1GB (binary units)
        #[arg(long, value_parser = memory_arg)]
        memory: String,
        /// the plan's connection limit: connections logged in at once
        /// (default 0: no limit of its own, only the server's -c)
        #[arg(long, value_name = "N")]
        connections: Option<u32>,
    },
    /// List all caches
    List,
    /// Show one cache and its credentials
    Show {
        /// cache id
        id: u32,
    },
    /// Delete a cache, its credentials and its data
    Delete {
        /// cache id
        id: u32,
    },
    /// Change a cache's memory plan or connection limit, or enable / disable it
    #[command(group(ArgGroup::new("change").required(true).multiple(true).args(["memory", "connections", "enable", "disable"])))]
    Set {
        /// cache id
        #[arg(long)]
        id: u32,
        /// the new memory plan (bytes, or 25MB, 1GB, ...)
        #[arg(long, value_parser = memory_arg)]
        memory: Option<String>,
        /// the new connection limit (0: none); lowering it closes no
        /// connection, new logins wait for room
        #[arg(long, value_name = "N")]
        connections: Option<u32>,
        /// let the cache's credentials authenticate again
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// refuse authentication and close the cache's live connections
        #[arg(long)]
        disable: bool,
    },
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum CredentialCmd {
    /// List a cache's credentials
    List {
        /// cache id
        #[arg(long = "cache", value_name = "ID")]
        cache: u32,
    },
    /// Add a credential (all capabilities unless switched off)
    Add {
        /// cache id
        #[arg(long = "cache", value_name = "ID")]
        cache: u32,
        /// without the write capability (storage commands are refused)
        #[arg(long)]
        no_write: bool,
        /// without the flush capability (flush_all is refused)
        #[arg(long)]
        no_flush: bool,
        /// without the API capability
        #[arg(long)]
        no_api: bool,
    },
    /// Remove a credential; its live connections are closed
    Remove {
        /// cache id
        #[arg(long = "cache", value_name = "ID")]
        cache: u32,
        /// the credential's username
        username: String,
    },
    /// Make a credential the cache's primary one
    Promote {
        /// cache id
        #[arg(long = "cache", value_name = "ID")]
        cache: u32,
        /// the credential's username
        username: String,
    },
    /// Change a credential's capabilities; those not given keep their value
    #[command(group(ArgGroup::new("caps").required(true).multiple(true).args(["write", "flush", "api"])))]
    Caps {
        /// cache id
        #[arg(long = "cache", value_name = "ID")]
        cache: u32,
        /// the credential's username
        username: String,
        /// write capability (true/false)
        #[arg(long, value_name = "BOOL", value_parser = BoolishValueParser::new())]
        write: Option<bool>,
        /// flush capability (true/false)
        #[arg(long, value_name = "BOOL", value_parser = BoolishValueParser::new())]
        flush: Option<bool>,
        /// API capability (true/false)
        #[arg(long, value_name = "BOOL", value_parser = BoolishValueParser::new())]
        api: Option<bool>,
    },
}

/// Rejects a malformed `--memory` before anything is sent.
fn memory_arg(s: &str) -> Result<String, String> {
    parse_memory(s).map(|_| s.trim().to_string())
}

/// Why a subcommand failed.
#[derive(Debug)]
pub enum CliError {
    /// The endpoint answered with an error status.
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Anything else: unreachable endpoint, no token, malformed answer.
    Other(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Api { status: 401, .. } => {
                f.write_str("the admin endpoint refused the operator token (check SHOAL_ADMIN_TOKEN / --data-dir)")
            }
            CliError::Api { status, message, .. } => write!(f, "{message} (HTTP {status})"),
            CliError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

/// Runs one subcommand, printing to stdout (errors to stderr). Returns the
/// process exit code: 0 on success, 1 on any failure.
pub fn run_subcommand(cmd: Subcommand) -> i32 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match execute(&cmd, &mut out) {
        Ok(()) => 0,
        Err(e) => {
            let _ = out.flush();
            eprintln!("shoal: {e}");
            1
        }
    }
}

/// Runs one subcommand, writing its output to `out`.
pub fn execute(cmd: &Subcommand, out: &mut dyn Write) -> Result<(), CliError> {
    let admin = match cmd {
        Subcommand::Cache(c) => &c.admin,
        Subcommand::Credential(c) => &c.admin,
        Subcommand::Cert(c) => &c.admin,
        Subcommand::Node(c) => &c.admin,
    };
    let client = AdminClient::new(&admin.admin, &operator_token(admin.data_dir())?)
        .with_ca(admin.admin_ca.as_deref())?;
    match cmd {
        Subcommand::Cache(c) => cache(&client, &c.command, out, admin.json),
        Subcommand::Credential(c) => credential(&client, &c.command, out, admin.json),
        Subcommand::Cert(c) => certs::run(&client, &c.command, out, admin.json),
        Subcommand::Node(c) => node(&client, &c.command, out, admin.json),
    }
}

fn node(
    client: &AdminClient,
    cmd: &NodeCmd,
    out: &mut dyn Write,
    json: bool,
) -> Result<(), CliError> {
    let answer = match cmd {
        NodeCmd::List => client.call("GET", "/admin/v1/nodes", None)?,
        NodeCmd::Drain { name } => client.call(
            "POST",
            &format!("/admin/v1/nodes/{}/drain", segment(name)),
            None,
        )?,
    };
    if json {
        return print::json(out, &answer).map_err(written);
    }
    match cmd {
        NodeCmd::List => print::node_table(out, &answer),
        NodeCmd::Drain { name } => writeln!(
            out,
            "Node {name} is draining: out of the discovery list now, stopping after its grace."
        ),
    }
    .map_err(written)
}

/// The operator token: `SHOAL_ADMIN_TOKEN` if set and non-empty, else the
/// first line of `data_dir/operator.token`.
pub fn operator_token(data_dir: &Path) -> Result<String, CliError> {
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let path = data_dir.join(OPERATOR_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => Err(CliError::Other(format!("{} is empty", path.display()))),
        Err(e) => Err(CliError::Other(format!(
            "no operator token: cannot read {} ({e}); set {TOKEN_ENV} or point --data-dir at the server's data directory",
            path.display()
        ))),
    }
}

fn written(e: std::io::Error) -> CliError {
    CliError::Other(format!("writing output: {e}"))
}

fn cache(
    client: &AdminClient,
    cmd: &CacheCmd,
    out: &mut dyn Write,
    json: bool,
) -> Result<(), CliError> {
    let answer = match cmd {
        CacheCmd::Create {
            name,
            memory,
            connections,
        } => {
            let mut body = json!({"name": name, "memory": memory});
            if let Some(n) = connections {
                body["connections"] = json!(n);
            }
            client.call("POST", "/admin/v1/caches", Some(&body))?
        }
        CacheCmd::List => client.call("GET", "/admin/v1/caches", None)?,
        CacheCmd::Show { id } => client.call("GET", &format!("/admin/v1/caches/{id}"), None)?,
        CacheCmd::Delete { id } => {
            client.call("DELETE", &format!("/admin/v1/caches/{id}"), None)?
        }
        CacheCmd::Set {
            id,
            memory,
            connections,
            enable,
            disable,
        } => {
            let mut body = json!({});
            if let Some(m) = memory {
                body["memory"] = json!(m);
            }
            if let Some(n) = connections {
                body["connections"] = json!(n);
            }
            if *enable || *disable {
                body["enabled"] = json!(*enable);
            }
            client.call("PATCH", &format!("/admin/v1/caches/{id}"), Some(&body))?
        }
    };
    if json {
        return print::json(out, &answer).map_err(written);
    }
    match cmd {
        CacheCmd::Create { .. } => print::created_cache(out, &answer),
        CacheCmd::List => print::cache_table(out, &answer["caches"]),
        CacheCmd::Show { .. } => print::cache_details(out, &answer),
        CacheCmd::Delete { id } => writeln!(out, "Deleted cache {id}."),
        CacheCmd::Set { .. } => print::cache_line(out, &answer["cache"]),
    }
    .map_err(written)
}

fn credential(
    client: &AdminClient,
    cmd: &CredentialCmd,
    out: &mut dyn Write,
    json: bool,
) -> Result<(), CliError> {
    let base = |cache: u32| format!("/admin/v1/caches/{cache}/credentials");
    let answer = match cmd {
        CredentialCmd::List { cache } => client.call("GET", &base(*cache), None)?,
        CredentialCmd::Add {
            cache,
            no_write,
            no_flush,
            no_api,
        } => {
            let body = json!({"write": !no_write, "flush": !no_flush, "api": !no_api});
            client.call("POST", &base(*cache), Some(&body))?
        }
        CredentialCmd::Remove { cache, username } => client.call(
            "DELETE",
            &format!("{}/{}", base(*cache), segment(username)),
            None,
        )?,
        CredentialCmd::Promote { cache, username } => client.call(
            "POST",
            &format!("{}/{}/promote", base(*cache), segment(username)),
            None,
        )?,
        CredentialCmd::Caps {
            cache,
            username,
            write,
            flush,
            api,
        } => {
            // The route replaces the whole set; keep what was not given.
            let current = client.call("GET", &base(*cache), None)?;
            let cred = current["credentials"]
                .as_array()
                .and_then(|all| all.iter().find(|c| c["username"] == username.as_str()))
                .ok_or_else(|| CliError::Api {
                    status: 404,
                    code: "not_found".into(),
                    message: format!("cache {cache} has no credential {username}"),
                })?;
            let now = |name: &str, given: Option<bool>| {
                given.unwrap_or(cred["caps"][name].as_bool().unwrap_or(false))
            };
            let body = json!({
                "write": now("write", *write),
                "flush": now("flush", *flush),
                "api": now("api", *api),
            });
            client.call(
                "PATCH",
                &format!("{}/{}", base(*cache), segment(username)),
                Some(&body),
            )?
        }
    };
    if json {
        return print::json(out, &answer).map_err(written);
    }
    match cmd {
        CredentialCmd::List { .. } => print::credential_table(out, &answer["credentials"]),
        CredentialCmd::Add { .. } => print::added_credential(out, &answer["credential"]),
        CredentialCmd::Remove { cache, username } => {
            writeln!(out, "Removed credential {username} from cache {cache}.")
        }
        CredentialCmd::Promote { cache, username } => {
            writeln!(
                out,
                "Credential {username} is now the primary credential of cache {cache}."
            )
        }
        CredentialCmd::Caps { .. } => print::credential_line(out, &answer["credential"]),
    }
    .map_err(written)
}

/// For tests and scripts: the value of a `KEY=value` line in the text output.
pub fn output_value<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}
