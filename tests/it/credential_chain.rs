//! The data-driven suite of the default chain, in the spirit of aws-config's test data.
//!
//! Each folder under `tests/credential_cases/` is one case, copied into a temporary directory
//! before it runs (so that a case may change its files):
//!
//! * `env.json`: the variables (nothing else is visible). In it and in every file of the case,
//!   `${HOME}` is the copy's `home/` directory, `${DIR}` the copy itself, `${STS}` the loopback
//!   STS mock's URL. Unless the case
//!   sets it, `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true` is added so that no case ever reaches
//!   a real metadata service.
//! * `home/...`: the files of the home directory (`.aliyun/config.json`,
//!   `.alibabacloud/credentials.ini`, OIDC token files, ...).
//! * `sts.json` (optional): the mock STS's scripted answers, a list of `{"action",
//!   "signed_with": secret | null (null: the request must be unsigned), "status", "body",
//!   "times"}`; a request no answer matches gets a 404 and fails the case.
//! * `expected.json`: `{"provider", "key_id" (masked), "parent_key_id" (masked or null),
//!   "security_token": bool, "selected": slot, "requests": [params the STS requests carried, in
//!   order], "rotate": {"file", "content"} (then the chain is asked again)}` or
//!   `{"error": {"kind": "not_configured" | "invalid" | "unavailable" | "compromised",
//!   "contains": [...], "not_contains": [...]}}`.
//!
//! Signatures of the STS requests are checked by the independent verifier of `tests/common`.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aliyun_guard::credentials::{CredentialsErrorKind, DefaultChain, Env};
use aliyun_guard::{Error, Guard};
use serde_json::Value;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use common::{ValidSignature, param, params_of};

/// Matches requests that carry no AccessKey and no signature.
struct Unsigned;

impl Match for Unsigned {
    fn matches(&self, request: &Request) -> bool {
        params_of(request)
            .iter()
            .all(|(k, _)| !matches!(k.as_str(), "AccessKeyId" | "Signature" | "SecurityToken"))
    }
}

/// Matches requests whose `Action` is the given (owned) name.
struct ActionNamed(String);

impl Match for ActionNamed {
    fn matches(&self, request: &Request) -> bool {
        param(request, "Action").as_deref() == Some(self.0.as_str())
    }
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/credential_cases")
}

/// Copies a case, replacing `${HOME}`, `${DIR}` and `${STS}` in every file.
fn copy_dir(from: &Path, to: &Path, substitute: &dyn Fn(&str) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target, substitute);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(&target, substitute(&text)).unwrap();
        }
    }
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn kind_name(err: &Error) -> &'static str {
    match err {
        Error::Credentials { kind, .. } => match kind {
            CredentialsErrorKind::NotConfigured => "not_configured",
            CredentialsErrorKind::Invalid => "invalid",
            CredentialsErrorKind::Unavailable => "unavailable",
            _ => "other_credentials",
        },
        Error::CompromisedKey(_) => "compromised",
        Error::Api(_) => "api",
        _ => "other",
    }
}

/// Runs one case; returns a description of the first mismatch.
async fn run_case(name: &str) -> Result<(), String> {
    let source = cases_dir().join(name);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(name);
    let home = dir.join("home");
    let sts = MockServer::start().await;
    let substitute = |s: &str| {
        s.replace("${HOME}", &home.display().to_string())
            .replace("${DIR}", &dir.display().to_string())
            .replace("${STS}", &sts.uri())
    };
    copy_dir(&source, &dir, &substitute);
    std::fs::create_dir_all(&home).unwrap();

    if let Some(Value::Array(answers)) = read_json(&dir.join("sts.json")) {
        for answer in answers {
            let action = answer["action"]
                .as_str()
                .unwrap_or("AssumeRole")
                .to_string();
            let status = answer["status"].as_u64().unwrap_or(200) as u16;
            let template = ResponseTemplate::new(status).set_body_json(answer["body"].clone());
            let mock = match answer["signed_with"].as_str() {
                Some(secret) => Mock::given(ActionNamed(action)).and(ValidSignature::new(secret)),
                None => Mock::given(ActionNamed(action)).and(Unsigned),
            };
            let mock = mock.respond_with(template);
            let mock = match answer["times"].as_u64() {
                Some(n) => mock.up_to_n_times(n),
                None => mock,
            };
            mock.mount(&sts).await;
        }
    }
    // Anything else is unexpected: a loud answer instead of wiremock's default 404.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(418).set_body_string("no scripted answer matched"))
        .with_priority(u8::MAX)
        .mount(&sts)
        .await;

    let mut vars: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(map)) = read_json(&dir.join("env.json")) {
        for (k, v) in map {
            let v = v.as_str().ok_or(format!("env.json: {k} is not a string"))?;
            vars.push((k, substitute(v)));
        }
    }
    if !vars
        .iter()
        .any(|(k, _)| k == "ALIBABA_CLOUD_ECS_METADATA_DISABLED")
    {
        vars.push(("ALIBABA_CLOUD_ECS_METADATA_DISABLED".into(), "true".into()));
    }
    let expected = read_json(&dir.join("expected.json")).ok_or("no expected.json")?;
    let guard = Arc::new(Guard::new());
    let chain = DefaultChain::builder()
        .env(Env::from_vars(vars))
        .guard(Arc::clone(&guard))
        .build();

    let mut results = vec![chain.resolve().await];
    if let Some(rotate) = expected.get("rotate") {
        let file = dir.join(rotate["file"].as_str().ok_or("rotate.file")?);
        let next = file.with_extension("rotating");
        std::fs::write(&next, rotate["content"].as_str().ok_or("rotate.content")?).unwrap();
        std::fs::rename(&next, &file).unwrap();
        results.push(chain.resolve().await);
    }

    for (i, result) in results.into_iter().enumerate() {
        let at = format!("fetch {}", i + 1);
        match (&expected.get("error"), result) {
            (Some(error), Err(err)) => {
                let shown = format!("{err} | {err:?}");
                let want = error["kind"].as_str().unwrap_or_default();
                if kind_name(&err) != want {
                    return Err(format!("{at}: kind {} != {want}: {shown}", kind_name(&err)));
                }
                for needle in error["contains"].as_array().into_iter().flatten() {
                    let needle = substitute(needle.as_str().unwrap_or_default());
                    if !shown.contains(&needle) {
                        return Err(format!("{at}: {needle:?} not in {shown}"));
                    }
                }
                for needle in error["not_contains"].as_array().into_iter().flatten() {
                    let needle = needle.as_str().unwrap_or_default();
                    if shown.contains(needle) {
                        return Err(format!("{at}: {needle:?} is in {shown}"));
                    }
                }
                if want == "compromised"
                    && let Some(key) = error["compromised_key"].as_str()
                    && !guard.is_compromised(key)
                {
                    return Err(format!(
                        "{at}: the guard does not know {key} is compromised"
                    ));
                }
            }
            (Some(_), Ok(creds)) => {
                return Err(format!("{at}: expected an error, got {creds:?}"));
            }
            (None, Err(err)) => {
                return Err(format!(
                    "{at}: unexpected error: {}",
                    common::error_chain(&err)
                ));
            }
            (None, Ok(creds)) => {
                let check = |field: &str, got: Option<String>| -> Result<(), String> {
                    match expected.get(field) {
                        None => Ok(()),
                        Some(Value::Null) if got.is_none() => Ok(()),
                        Some(Value::String(want)) if got.as_deref() == Some(want) => Ok(()),
                        Some(Value::Bool(want)) if got.as_deref() == Some(&want.to_string()) => {
                            Ok(())
                        }
                        Some(want) => Err(format!("{at}: {field} is {got:?}, expected {want}")),
                    }
                };
                check("provider", Some(creds.provider_name().to_string()))?;
                check("key_id", Some(creds.masked_key_id()))?;
                check(
                    "parent_key_id",
                    creds
                        .parent_key_id()
                        .map(aliyun_guard::credentials::mask_key_id),
                )?;
                check("security_token", Some(creds.is_sts().to_string()))?;
                check("selected", chain.selected().map(|s| s.to_string()))?;
                check("region", chain.region())?;
            }
        }
    }

    let received = sts.received_requests().await.unwrap_or_default();
    let wanted = expected
        .get("requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if received.len() != wanted.len() {
        return Err(format!(
            "{} STS request(s), expected {}",
            received.len(),
            wanted.len()
        ));
    }
    for (i, (request, want)) in received.iter().zip(&wanted).enumerate() {
        for (name, value) in want.as_object().into_iter().flatten() {
            let got = param(request, name);
            let ok = match value {
                Value::Null => got.is_none(),
                Value::String(v) => got.as_deref() == Some(substitute(v).as_str()),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "STS request {}: {name} is {got:?}, expected {value}",
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_credential_case() {
    let mut names: Vec<String> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "only {} cases", names.len());
    let mut failures = Vec::new();
    for name in &names {
        if let Err(why) = run_case(name).await {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
