//! `aliyun-guard`: the operator's command line to find, audit, contain and rotate a leaked
//! AccessKey, built on the `aliyun_guard` library's public API.
//!
//! Exit codes: 0 ok, 1 API or transport error, 2 usage or configuration, 3 a compromised key
//! found (where that is the answer).

mod audit;
mod contain;
mod journal;
mod leaks;
mod output;
mod probe;
mod rotate;
mod status;
mod table;
mod whoami;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use aliyun_guard::credentials::{CredentialsProvider, DefaultChain, Env, ProfileProvider};
use aliyun_guard::guard::STATE_DIR_ENV;
use aliyun_guard::{Client, Error, Guard, RpcRequest};
use clap::{Args, Parser, Subcommand};

use output::Output;

const LONG_ABOUT: &str = "\
The operator's tool for a leaked Alibaba Cloud AccessKey: is it flagged (probe), what did it do \
(audit), restrict it (contain), replace it (rotate), and what the guard remembers (status).

Identities: --profile NAME selects a profile of the Alibaba Cloud CLI's config.json \
(ALIBABA_CLOUD_CONFIG_FILE, else ~/.aliyun/config.json); without it the default credentials \
chain is used (environment, OIDC, config.json, INI file, ECS role, credentials URI). Commands \
that change RAM or read ActionTrail take a second identity, --admin-profile: a key under leak \
protection cannot call RAM or IMS at all.

Exit codes: 0 ok, 1 API or transport error, 2 usage or configuration, 3 a compromised key found.

Example:
  aliyun-guard probe
  aliyun-guard audit LTAI5tExampleKeyId --admin-profile admin --days 30
  aliyun-guard rotate LTAI5tExampleKeyId --admin-profile admin";

#[derive(Parser, Debug)]
#[command(
    name = "aliyun-guard",
    version,
    about = "Find, audit, contain and rotate a leaked Alibaba Cloud AccessKey",
    long_about = LONG_ABOUT
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand takes.
#[derive(Args, Clone, Debug)]
pub struct Global {
    /// Profile of the CLI's config.json for the identity used (default: the default chain).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Sends every call to this endpoint (a URL: for tests and private gateways).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Region: RegionId of the calls, and the ActionTrail and Security Center hosts.
    #[arg(long, global = true, value_name = "REGION_ID")]
    pub region: Option<String>,
    /// The guard's state directory (default: ALIYUN_GUARD_STATE_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The fleet's Redis store, `redis://` or `rediss://` (default: ALIYUN_GUARD_REDIS_URL;
    /// needs the `redis` feature). Its password is never printed.
    #[cfg(feature = "redis")]
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,
    /// The key prefix (namespace) in that Redis (default: ALIYUN_GUARD_REDIS_PREFIX, else
    /// aliyun-guard).
    #[cfg(feature = "redis")]
    #[arg(long, global = true, value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    Whoami(whoami::WhoamiArgs),
    Probe(probe::ProbeArgs),
    Status(status::StatusArgs),
    Table(table::TableArgs),
    Leaks(leaks::LeaksArgs),
    Audit(audit::AuditArgs),
    Contain(contain::ContainArgs),
    Rotate(rotate::RotateArgs),
}

/// A failure with its exit code; the message is the library's Display (already redacted).
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    /// Usage or configuration (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// An API, transport or local I/O failure (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::CompromisedKey(_) => 3,
            Error::InvalidRequest(_)
            | Error::InvalidEndpoint { .. }
            | Error::Config(_)
            | Error::Credentials { .. }
            | Error::RestrictionTable { .. }
            | Error::State { .. } => 2,
            _ => 1,
        };
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str("\n  caused by: ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self { code, message }
    }
}

/// What every subcommand needs: the global flags and the guard.
pub struct Ctx {
    pub global: Global,
    pub guard: Arc<Guard>,
    state_dir: Option<PathBuf>,
    /// The guard shares a Redis store (feature `redis`).
    has_redis: bool,
}

impl Ctx {
    /// The state directory: `--state-dir`, else `ALIYUN_GUARD_STATE_DIR`.
    pub fn state_dir(&self) -> Option<&std::path::Path> {
        self.state_dir.as_deref()
    }

    /// The state directory, required by this command.
    /// Fails unless the guard has a store to show or edit: a state directory or a Redis.
    pub fn require_store(&self, why: &str) -> Result<(), CliError> {
        if self.has_redis || self.state_dir().is_some() {
            return Ok(());
        }
        Err(CliError::usage(format!(
            "{why} needs the guard's store: give --state-dir DIR or set {STATE_DIR_ENV}{}",
            if cfg!(feature = "redis") {
                ", or --redis-url URL / ALIYUN_GUARD_REDIS_URL"
            } else {
                " (or build with the redis feature for a fleet's Redis)"
            }
        )))
    }

    pub fn require_state_dir(&self, why: &str) -> Result<&std::path::Path, CliError> {
        self.state_dir().ok_or_else(|| {
            CliError::usage(format!(
                "{why} needs the guard's state directory: give --state-dir DIR or set \
                 {STATE_DIR_ENV}"
            ))
        })
    }

    pub fn output(&self) -> Output {
        self.global.output
    }

    /// A client with the identity of `profile` (`None`: the default chain).
    pub fn client(&self, profile: Option<&str>) -> Result<Client, CliError> {
        let env = Env::process();
        let (provider, profile_region): (Arc<dyn CredentialsProvider>, Option<String>) =
            match profile {
                Some(name) => {
                    if name.trim().is_empty() {
                        return Err(CliError::usage("a profile name is empty"));
                    }
                    let provider = ProfileProvider::from_env(&env)
                        .with_profile(name)
                        .guard(Arc::clone(&self.guard));
                    let region = provider.region();
                    (Arc::new(provider), region)
                }
                None => {
                    let chain = DefaultChain::builder()
                        .env(env)
                        .guard(Arc::clone(&self.guard))
                        .build();
                    let region = chain.region();
                    (Arc::new(chain), region)
                }
            };
        let mut builder = Client::builder()
            .credentials_provider(provider)
            .guard(Arc::clone(&self.guard));
        if let Some(endpoint) = &self.global.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(region) = self.global.region.clone().or(profile_region) {
            builder = builder.region(region);
        }
        Ok(builder.build()?)
    }

    /// A request; with no `--endpoint`, products whose host is not derived from their code
    /// (Security Center, ActionTrail in a region) get theirs.
    pub fn rpc(&self, product: &str, version: &str, action: &str) -> Result<RpcRequest, CliError> {
        let request = RpcRequest::new(product, version, action);
        if self.global.endpoint.is_some() {
            return Ok(request);
        }
        let region = self.global.region.as_deref();
        if let Some(r) = region
            && !is_region_id(r)
        {
            return Err(CliError::usage(format!(
                "--region {:?} is not a region id",
                output::clean(r)
            )));
        }
        Ok(match product {
            "Sas" => {
                let host = match region {
                    None => "tds.cn-shanghai.aliyuncs.com",
                    Some(r) if r.starts_with("cn-") => "tds.cn-shanghai.aliyuncs.com",
                    Some(_) => "tds.ap-southeast-1.aliyuncs.com",
                };
                request.endpoint(host)
            }
            "Actiontrail" => match region {
                Some(r) => request.endpoint(format!("actiontrail.{r}.aliyuncs.com")),
                None => request,
            },
            _ => request,
        })
    }
}

/// Checks an AccessKey ID given on the command line (it becomes a request parameter).
pub fn check_key_id(key_id: &str) -> Result<String, CliError> {
    let id = key_id.trim();
    if id.len() < 8 || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
    {
        return Err(CliError::usage(format!(
            "{:?} is not an AccessKey ID (letters and digits, such as LTAI5t...)",
            output::clean(&aliyun_guard::credentials::mask_key_id(id))
        )));
    }
    Ok(id.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let state_dir = cli.global.state_dir.clone().or_else(|| {
        std::env::var_os(STATE_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    });
    let mut guard = Guard::builder();
    if let Some(dir) = &state_dir {
        guard = guard.state_dir(dir);
    }
    #[cfg(feature = "redis")]
    let has_redis = {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = cli
            .global
            .redis_url
            .clone()
            .or_else(|| env(aliyun_guard::guard::REDIS_URL_ENV));
        let prefix = cli
            .global
            .redis_prefix
            .clone()
            .or_else(|| env(aliyun_guard::guard::REDIS_PREFIX_ENV))
            .unwrap_or_else(|| "aliyun-guard".to_string());
        if let Some(url) = &url {
            guard = guard.redis(url, prefix);
        }
        url.is_some()
    };
    #[cfg(not(feature = "redis"))]
    let has_redis = false;
    let guard = match guard.build() {
        Ok(guard) => Arc::new(guard),
        Err(e) => return fail(CliError::from(e)),
    };
    let ctx = Ctx {
        global: cli.global,
        guard,
        state_dir,
        has_redis,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(CliError::failed(format!("cannot start the runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Whoami(args) => whoami::run(&ctx, args).await,
            Command::Probe(args) => probe::run(&ctx, args).await,
            Command::Status(args) => status::run(&ctx, args),
            Command::Table(args) => table::run(&ctx, args),
            Command::Leaks(args) => leaks::run(&ctx, args).await,
            Command::Audit(args) => audit::run(&ctx, args).await,
            Command::Contain(args) => contain::run(&ctx, args).await,
            Command::Rotate(args) => rotate::run(&ctx, args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(e),
    }
}

fn fail(e: CliError) -> ExitCode {
    eprintln!("error: {}", e.message);
    ExitCode::from(e.code)
}

/// A region id is one DNS label: ASCII letters, digits and `-` (not first or last), at most 63
/// characters (the library checks it again when it forms the host).
fn is_region_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && !text.starts_with('-')
        && !text.ends_with('-')
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
