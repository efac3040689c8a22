//! Calls any Alibaba Cloud RPC or ROA API, through the guard.
//!
//! ```text
//! cargo run --example call -- [-v] [--endpoint URL] [--region ID] [--method GET|POST] \
//!     [--signature v1|v3] PRODUCT VERSION ACTION [Name=Value ...]
//! cargo run --example call -- [-v] [--endpoint URL] [--region ID] \
//!     --roa METHOD PATH [--body JSON] PRODUCT VERSION ACTION [Name=Value ...]
//! ```
//!
//! `--signature` chooses the RPC signature (default v1). `--roa` calls a ROA-style API (signed
//! with V3): METHOD and PATH as the API's documentation gives them, path parameters written in
//! the PATH (`/clusters/c123`); `Name=Value` pairs go to the query; `--body` sends a JSON body.
//! The ACTION is the API's name, which the guard checks.
//!
//! `-v` prints to stderr which provider supplied the credentials and the key id, masked.
//!
//! Credentials come from the default chain (environment, then `~/.aliyun/config.json`). The guard
//! persists what it learns in `ALIYUN_GUARD_STATE_DIR` when that is set (built with `--features
//! redis`: shares it through the Redis named by `ALIYUN_GUARD_REDIS_URL` when that is set).
//!
//! Exit codes: 0 success (the answer's JSON on stdout); 1 API or transport error (code, message and
//! request id on stderr); 2 bad usage or configuration; 3 compromised key (guidance on stderr).

use std::process::ExitCode;
use std::sync::Arc;

use aliyun_guard::{Client, Error, Guard, Method, RoaRequest, RpcRequest, SignatureVersion};

const USAGE: &str = "usage: call [-v] [--endpoint URL] [--region ID] [--method GET|POST] \
                     [--signature v1|v3] PRODUCT VERSION ACTION [Name=Value ...]\n   \
                     or: call [-v] [--endpoint URL] [--region ID] --roa METHOD PATH \
                     [--body JSON] PRODUCT VERSION ACTION [Name=Value ...]";

/// A ROA call's method, path and optional JSON body.
struct Roa {
    method: String,
    path: String,
    body: Option<serde_json::Value>,
}

struct Args {
    endpoint: Option<String>,
    region: Option<String>,
    method: Method,
    signature: SignatureVersion,
    roa: Option<Roa>,
    verbose: bool,
    product: String,
    version: String,
    action: String,
    params: Vec<(String, String)>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut endpoint = None;
    let mut region = None;
    let mut method = Method::Post;
    let mut signature = SignatureVersion::V1;
    let mut roa = None;
    let mut body = None;
    let mut verbose = false;
    let mut positional = Vec::new();
    while let Some(arg) = argv.next() {
        let mut value_of = |flag: &str| argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-v" | "--verbose" => verbose = true,
            "--endpoint" => endpoint = Some(value_of("--endpoint")?),
            "--region" => region = Some(value_of("--region")?),
            "--method" => method = value_of("--method")?.parse()?,
            "--signature" => signature = value_of("--signature")?.parse()?,
            "--roa" => {
                let method = value_of("--roa")?.to_ascii_uppercase();
                let path = argv.next().ok_or("--roa needs METHOD and PATH")?;
                roa = Some((method, path));
            }
            "--body" => {
                let text = value_of("--body")?;
                let json =
                    serde_json::from_str(&text).map_err(|e| format!("--body is not JSON: {e}"))?;
                body = Some(json);
            }
            "--" => positional.extend(argv.by_ref()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    if positional.len() < 3 {
        return Err("PRODUCT, VERSION and ACTION are required".into());
    }
    let mut rest = positional.into_iter();
    let (product, version, action) = (
        rest.next().unwrap_or_default(),
        rest.next().unwrap_or_default(),
        rest.next().unwrap_or_default(),
    );
    let params = rest
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => Err(format!("parameter {pair:?} is not Name=Value")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let roa = match (roa, body) {
        (Some((method, path)), body) => Some(Roa { method, path, body }),
        (None, Some(_)) => return Err("--body needs --roa".into()),
        (None, None) => None,
    };
    Ok(Some(Args {
        endpoint,
        region,
        method,
        signature,
        roa,
        verbose,
        product,
        version,
        action,
        params,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let builder = Guard::builder().state_dir_from_env();
    // Built with `--features redis`: the fleet store from ALIYUN_GUARD_REDIS_URL.
    #[cfg(feature = "redis")]
    let builder = builder.redis_from_env();
    let guard = match builder.build() {
        Ok(guard) => Arc::new(guard),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = Client::builder().guard(guard);
    if let Some(endpoint) = &args.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if let Some(region) = &args.region {
        builder = builder.region(region);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.verbose {
        // Errors are left to the call below, which reports them with its exit code.
        if let Ok(credentials) = client.current_credentials().await {
            let mut line = format!(
                "credentials: {} from provider {}",
                credentials.masked_key_id(),
                credentials.provider_name()
            );
            if let Some(parent) = credentials.parent_key_id() {
                line.push_str(&format!(
                    ", minted from {}",
                    aliyun_guard::credentials::mask_key_id(parent)
                ));
            }
            if let Some(expiry) = credentials.expiry() {
                line.push_str(&format!(", expires {expiry}"));
            }
            eprintln!("{line}");
        }
    }
    let answer = match args.roa {
        Some(roa) => {
            let mut request = RoaRequest::new(
                args.product,
                args.version,
                args.action,
                roa.method,
                roa.path,
            );
            for (name, value) in args.params {
                request = request.query(name, value);
            }
            if let Some(body) = roa.body {
                request = request.json(body);
            }
            client.call_roa(&request).await
        }
        None => {
            let request = RpcRequest::new(args.product, args.version, args.action)
                .method(args.method)
                .signature(args.signature)
                .params(args.params);
            client.call(&request).await
        }
    };
    match answer {
        Ok(json) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(Error::CompromisedKey(leak)) => {
            eprintln!("{leak}");
            let health = client.guard().store_health();
            if health.unsaved_changes {
                let why = health
                    .last_error
                    .unwrap_or_else(|| "not written in time".into());
                eprintln!(
                    "warning: the compromised key was not saved to the state directory: {why}"
                );
            }
            ExitCode::from(3)
        }
        Err(
            e @ (Error::InvalidRequest(_)
            | Error::InvalidEndpoint { .. }
            | Error::Config(_)
            | Error::Credentials { .. }),
        ) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            eprintln!("code: {}", e.code().unwrap_or("-"));
            if let Error::Api(api) = &e {
                eprintln!("message: {}", api.message);
            }
            eprintln!("request id: {}", e.request_id().unwrap_or("-"));
            ExitCode::from(1)
        }
    }
}
