//! Credential providers with injected environments and files (the process environment is never
//! changed).

use aliyun_guard::Error;
use aliyun_guard::credentials::{
    CredentialsProvider, DefaultChain, Env, EnvironmentProvider, ProfileProvider,
};

fn home_with_config(json: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
    std::fs::write(home.path().join(".aliyun/config.json"), json).unwrap();
    home
}

const CONFIG: &str = r#"{
  "current": "dev",
  "profiles": [
    {"name": "dev", "mode": "AK", "access_key_id": "LTAI5tDevKeyId000000dev1", "access_key_secret": "dev-secret"},
    {"name": "prod", "mode": "StsToken", "access_key_id": "STS.ProdKeyId0000000prd", "access_key_secret": "prod-secret", "sts_token": "prod-token"},
    {"name": "role", "mode": "RamRoleArn", "access_key_id": "x", "access_key_secret": "y"},
    {"name": "broken", "mode": "AK", "access_key_id": "LTAI5tOnlyId"}
  ]
}"#;

fn env_for(home: &tempfile::TempDir, extra: &[(&str, &str)]) -> Env {
    let mut vars: Vec<(String, String)> = vec![("HOME".into(), home.path().display().to_string())];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Env::from_vars(vars)
}

#[tokio::test]
async fn environment_wins_over_the_profile() {
    let home = home_with_config(CONFIG);
    let env = env_for(
        &home,
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tEnvKeyId0000000env"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret"),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "env-token"),
        ],
    );
    let creds = DefaultChain::with_env(env).resolve().await.unwrap();
    assert_eq!(creds.access_key_id(), "LTAI5tEnvKeyId0000000env");
    assert_eq!(creds.security_token(), Some("env-token"));
}

#[tokio::test]
async fn the_profile_is_used_when_the_environment_is_not_configured() {
    let home = home_with_config(CONFIG);
    let creds = DefaultChain::with_env(env_for(&home, &[]))
        .resolve()
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "LTAI5tDevKeyId000000dev1");
    assert!(!creds.is_sts());
}

#[tokio::test]
async fn alibaba_cloud_profile_selects_a_profile_and_sts_mode_works() {
    let home = home_with_config(CONFIG);
    let env = env_for(&home, &[("ALIBABA_CLOUD_PROFILE", "prod")]);
    let creds = DefaultChain::with_env(env).resolve().await.unwrap();
    assert_eq!(creds.access_key_id(), "STS.ProdKeyId0000000prd");
    assert_eq!(creds.security_token(), Some("prod-token"));
}

#[tokio::test]
async fn half_set_variables_stop_the_chain_with_a_clear_message() {
    let home = home_with_config(CONFIG);
    for (vars, missing) in [
        (
            vec![("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tX")],
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET is not",
        ),
        (
            vec![("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s")],
            "ALIBABA_CLOUD_ACCESS_KEY_ID is not",
        ),
        (vec![("ALIBABA_CLOUD_SECURITY_TOKEN", "t")], "are not"),
    ] {
        let err = DefaultChain::with_env(env_for(&home, &vars))
            .resolve()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Credentials { .. }));
        assert!(err.to_string().contains(missing), "{err}");
    }
}

#[tokio::test]
async fn empty_variables_count_as_unset() {
    let home = home_with_config(CONFIG);
    let env = env_for(
        &home,
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
        ],
    );
    assert_eq!(
        DefaultChain::with_env(env)
            .resolve()
            .await
            .unwrap()
            .access_key_id(),
        "LTAI5tDevKeyId000000dev1"
    );
}

#[tokio::test]
async fn nothing_configured_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let chain = DefaultChain::with_env(env_for(&home, &[]));
    assert!(
        chain
            .provide_credentials()
            .await
            .unwrap_err()
            .is_not_configured()
    );
    let err = chain.resolve().await.unwrap_err().to_string();
    assert!(
        err.contains("no credentials found")
            && err.contains("ALIBABA_CLOUD_ACCESS_KEY_ID")
            && err.contains("config.json"),
        "{err}"
    );
    assert!(
        EnvironmentProvider::new(Env::from_vars::<String, String>([]))
            .provide_credentials()
            .await
            .unwrap_err()
            .is_not_configured()
    );
}

#[tokio::test]
async fn profile_errors_are_real_errors() {
    let home = home_with_config(CONFIG);
    for (profile, needle) in [
        ("missing", "is not in"),
        ("role", "has no ram_role_arn"),
        ("broken", "access_key_secret"),
    ] {
        let env = env_for(&home, &[("ALIBABA_CLOUD_PROFILE", profile)]);
        let err = DefaultChain::with_env(env)
            .resolve()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{profile}: {err}");
    }
    let bad = home_with_config("{ not json");
    let err = DefaultChain::with_env(env_for(&bad, &[]))
        .resolve()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not valid JSON (line 1, column 3)"),
        "{err}"
    );
    // serde's own message can quote a value of the file (a secret): it is not kept.
    let typed = home_with_config(
        r#"{"profiles": [{"name": "default", "mode": "AK", "access_key_secret": "x", "enable_vpc": "S3CRET"}]}"#,
    );
    let err = DefaultChain::with_env(env_for(&typed, &[]))
        .resolve()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    assert!(!format!("{err} {err:?}").contains("S3CRET"));
    // Never echoes file content (which holds secrets).
    let secretive =
        home_with_config(r#"{"profiles": [{"name": "default", "access_key_secret": "S3CRET"#);
    let err = DefaultChain::with_env(env_for(&secretive, &[]))
        .resolve()
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("S3CRET"));
}

#[cfg(unix)]
#[tokio::test]
async fn an_unreadable_profile_file_is_an_error() {
    // A directory where the file should be: reading fails with something other than NotFound.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aliyun/config.json")).unwrap();
    let err = DefaultChain::with_env(env_for(&home, &[]))
        .resolve()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot read the profile file"),
        "{err}"
    );
}

#[tokio::test]
async fn a_file_without_current_uses_default_or_is_not_configured() {
    let home = home_with_config(
        r#"{"profiles": [{"name": "default", "mode": "AK", "access_key_id": "LTAI5tDefault00000000def", "access_key_secret": "s"}]}"#,
    );
    let creds = ProfileProvider::from_env(&env_for(&home, &[]))
        .provide_credentials()
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "LTAI5tDefault00000000def");
    let other = home_with_config(r#"{"profiles": [{"name": "x", "mode": "AK"}]}"#);
    assert!(
        ProfileProvider::from_env(&env_for(&other, &[]))
            .provide_credentials()
            .await
            .unwrap_err()
            .is_not_configured()
    );
}

#[test]
fn env_debug_shows_names_not_values() {
    let env = Env::from_vars([("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "VERY-SECRET")]);
    let shown = format!("{env:?}");
    assert!(shown.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET") && !shown.contains("VERY-SECRET"));
}

// ---- Providers that call STS, against a loopback mock ----

use crate::common;

use std::sync::Arc;

use aliyun_guard::Guard;
use aliyun_guard::credentials::{AssumeRoleProvider, OidcProvider};
use common::{ActionIs, KEY_ID, SECRET, ValidSignature, param};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const ROLE: &str = "acs:ram::1234567890123456:role/reader";
const OIDC_PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa";

/// A 200 answer carrying [`sts_answer`].
fn sts_ok(key_id: &str, secret: &str, token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(sts_answer(key_id, secret, token))
}

fn sts_answer(key_id: &str, secret: &str, token: &str) -> serde_json::Value {
    serde_json::json!({
        "RequestId": "STS-REQ-1",
        "AssumedRoleUser": {"Arn": "acs:ram::1234567890123456:role/reader/s", "AssumedRoleId": "1:s"},
        "Credentials": {
            "AccessKeyId": key_id, "AccessKeySecret": secret,
            "SecurityToken": token, "Expiration": "2031-05-06T07:08:09Z"
        }
    })
}

fn no_env() -> Env {
    Env::from_vars::<&str, &str>([])
}

#[tokio::test]
async fn assume_role_is_signed_by_the_parent_and_remembers_the_parent_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(ActionIs("AssumeRole"))
        .and(ValidSignature::new(SECRET))
        .respond_with(sts_ok("STS.NRoleKeyId0000001", "role-secret", "role-token"))
        .expect(1)
        .mount(&server)
        .await;
    let provider = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .session_name("report@nightly")
        .duration_seconds(1800)
        .policy(r#"{"Version":"1"}"#)
        .external_id("ext-42")
        .sts_endpoint(server.uri())
        .env(no_env())
        .build()
        .unwrap();
    let creds = provider.provide_credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "STS.NRoleKeyId0000001");
    assert_eq!(creds.security_token(), Some("role-token"));
    assert_eq!(creds.provider_name(), "ram_role_arn");
    assert_eq!(creds.parent_key_id(), Some(KEY_ID));
    assert_eq!(
        creds.expiry().unwrap(),
        time::macros::datetime!(2031-05-06 07:08:09 UTC)
    );
    let sent = &server.received_requests().await.unwrap()[0];
    for (name, value) in [
        ("AccessKeyId", KEY_ID),
        ("Version", "2015-04-01"),
        ("RoleArn", ROLE),
        ("RoleSessionName", "report@nightly"),
        ("DurationSeconds", "1800"),
        ("Policy", r#"{"Version":"1"}"#),
        ("ExternalId", "ext-42"),
    ] {
        assert_eq!(param(sent, name).as_deref(), Some(value), "{name}");
    }
    assert_eq!(param(sent, "SecurityToken"), None);
}

#[tokio::test]
async fn chained_roles_sign_with_the_first_role_and_point_at_the_long_lived_key() {
    let server = MockServer::start().await;
    // The second AssumeRole is signed with the first role's secret and carries its token.
    Mock::given(ActionIs("AssumeRole"))
        .and(ValidSignature::new("first-secret"))
        .respond_with(sts_ok(
            "STS.NSecondKeyId000002",
            "second-secret",
            "second-token",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(ActionIs("AssumeRole"))
        .and(ValidSignature::new(SECRET))
        .respond_with(sts_ok(
            "STS.NFirstKeyId0000001",
            "first-secret",
            "first-token",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let first = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .env(no_env())
        .build()
        .unwrap();
    let second = AssumeRoleProvider::builder(first, "acs:ram::1234567890123456:role/admin")
        .sts_endpoint(server.uri())
        .env(Env::from_vars([(
            "ALIBABA_CLOUD_ROLE_SESSION_NAME",
            "chained",
        )]))
        .build()
        .unwrap();
    let creds = second.provide_credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "STS.NSecondKeyId000002");
    assert_eq!(creds.parent_key_id(), Some(KEY_ID));
    let requests = server.received_requests().await.unwrap();
    let last = requests.last().unwrap();
    assert_eq!(param(last, "SecurityToken").as_deref(), Some("first-token"));
    assert_eq!(param(last, "RoleSessionName").as_deref(), Some("chained"));
}

#[tokio::test]
async fn a_leak_answer_to_assume_role_is_a_compromised_parent_key() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("AssumeRole"))
        .and(ValidSignature::new(SECRET))
        .respond_with(ResponseTemplate::new(400).set_body_json(common::leak_json()))
        .mount(&server)
        .await;
    let guard = Arc::new(Guard::new());
    let provider = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .guard(Arc::clone(&guard))
        .env(no_env())
        .build()
        .unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    assert!(err.is_compromised_key(), "{err}");
    assert!(guard.is_compromised(KEY_ID));
    assert!(!format!("{err} {err:?}").contains(SECRET));
}

#[tokio::test]
async fn assume_role_settings_are_checked_before_any_call() {
    let build = |role: &str, duration: u32, session: &str| {
        AssumeRoleProvider::builder(common::credentials(), role)
            .duration_seconds(duration)
            .session_name(session)
            .env(no_env())
            .build()
    };
    assert!(build(ROLE, 3600, "ok-name").is_ok());
    for (role, duration, session, needle) in [
        ("not-an-arn", 3600, "ok-name", "role ARN"),
        (ROLE, 899, "ok-name", "899"),
        (ROLE, 43_201, "ok-name", "43201"),
        (ROLE, 3600, "bad name", "session name"),
    ] {
        let err = build(role, duration, session).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    let err = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_region("evil.example/x")
        .env(no_env())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not a region id"), "{err}");
}

#[tokio::test]
async fn a_malformed_sts_answer_is_unavailable_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("AssumeRole"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "RequestId": "R", "Credentials": {"AccessKeyId": "STS.X", "AccessKeySecret": "LEAKY-SECRET"}
        })))
        .mount(&server)
        .await;
    let provider = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .env(no_env())
        .build()
        .unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("SecurityToken") && shown.contains("unavailable"),
        "{shown}"
    );
    assert!(!shown.contains("LEAKY-SECRET"), "{shown}");
}

fn fast_retries() -> aliyun_guard::RetryPolicy {
    aliyun_guard::RetryPolicy::new(3, std::time::Duration::from_millis(5))
}

#[tokio::test]
async fn a_throttled_assume_role_is_retried_and_signed_anew() {
    let server = MockServer::start().await;
    let signed = ValidSignature::new(SECRET);
    Mock::given(ActionIs("AssumeRole"))
        .and(signed.clone())
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "RequestId": "THR-1", "Code": "Throttling.User", "Message": "Request was denied due to user flow control."
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(ActionIs("AssumeRole"))
        .and(signed.clone())
        .respond_with(sts_ok(
            "STS.NRetriedKeyId00001",
            "role-secret",
            "role-token",
        ))
        .mount(&server)
        .await;
    let provider = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .retry(fast_retries())
        .env(no_env())
        .build()
        .unwrap();
    let creds = provider.provide_credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "STS.NRetriedKeyId00001");
    // Both attempts verified with the parent's secret, each with its own nonce and signature.
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let nonces = signed.nonces.lock().unwrap().clone();
    assert_eq!(nonces.len(), 2, "{nonces:?}");
    assert_ne!(nonces[0], nonces[1]);
    assert_ne!(
        param(&requests[0], "Signature"),
        param(&requests[1], "Signature")
    );
    for request in &requests {
        let agent = request.headers.get("user-agent").unwrap().to_str().unwrap();
        assert!(agent.starts_with("aliyun-guard/"), "{agent}");
        assert_eq!(request.url.query(), None);
    }
}

#[tokio::test]
async fn an_assume_role_that_may_have_run_is_not_retried() {
    // AssumeRole is retried as the client retries a call that is not idempotent: a 5xx answer
    // (the action may have run) is final; a throttling answer (it did not) is retried above.
    let server = MockServer::start().await;
    Mock::given(ActionIs("AssumeRole"))
        .respond_with(ResponseTemplate::new(500).set_body_json(serde_json::json!({
            "RequestId": "ISE-1", "Code": "InternalError", "Message": "The request processing has failed."
        })))
        .mount(&server)
        .await;
    let provider = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .retry(fast_retries())
        .env(no_env())
        .build()
        .unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (api.status, api.code.as_str(), api.attempts),
        (500, "InternalError", 1)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_assume_role_with_a_compromised_parent_is_refused_before_sending() {
    use aliyun_guard::guard::{Detection, LeakPolicy};
    let server = MockServer::start().await;
    let guard = common::guard_with(LeakPolicy::BlockAll);
    guard.mark_compromised(KEY_ID, "Alibaba's notice").unwrap();
    let provider = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .guard(Arc::clone(&guard))
        .env(no_env())
        .build()
        .unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    let Error::CompromisedKey(refused) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(refused.detection, Detection::RefusedLocally);
    assert_eq!(refused.masked_key_id, "LTAI****wxyz");
    assert!(server.received_requests().await.unwrap().is_empty());
    // The default policy lets STS calls out (AssumeRole is not on the restriction table).
    let lenient = Arc::new(Guard::new());
    lenient
        .mark_compromised(KEY_ID, "Alibaba's notice")
        .unwrap();
    Mock::given(ActionIs("AssumeRole"))
        .respond_with(sts_ok("STS.NLenientKeyId0001", "s", "t"))
        .mount(&server)
        .await;
    let provider = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .guard(lenient)
        .env(no_env())
        .build()
        .unwrap();
    provider.provide_credentials().await.unwrap();
}

#[tokio::test]
async fn a_leak_answer_to_a_chained_role_marks_the_long_lived_key() {
    let server = MockServer::start().await;
    // The first role is minted; the second AssumeRole, signed with it, gets the leak answer
    // (as a 200 JSON body, one of the forms the guard recognises).
    Mock::given(ActionIs("AssumeRole"))
        .and(ValidSignature::new("first-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(common::leak_json()))
        .mount(&server)
        .await;
    Mock::given(ActionIs("AssumeRole"))
        .and(ValidSignature::new(SECRET))
        .respond_with(sts_ok(
            "STS.NFirstKeyId0000001",
            "first-secret",
            "first-token",
        ))
        .mount(&server)
        .await;
    let guard = Arc::new(Guard::new());
    let first = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .guard(Arc::clone(&guard))
        .env(no_env())
        .build()
        .unwrap();
    let second = AssumeRoleProvider::builder(first, "acs:ram::1234567890123456:role/admin")
        .sts_endpoint(server.uri())
        .guard(Arc::clone(&guard))
        .env(no_env())
        .build()
        .unwrap();
    let err = second.provide_credentials().await.unwrap_err();
    let Error::CompromisedKey(leak) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(leak.request_id.as_deref(), Some("LEAK-REQ-1"));
    assert_eq!(leak.parent_masked_key_id.as_deref(), Some("LTAI****wxyz"));
    assert!(guard.is_compromised("STS.NFirstKeyId0000001"));
    assert!(guard.is_compromised(KEY_ID));
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("first-secret") && !shown.contains("first-token"),
        "{shown}"
    );
}

#[tokio::test]
async fn sts_error_text_is_redacted_as_the_client_redacts_it() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("AssumeRole"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-acs-request-id", "HDR-1")
                .set_body_json(serde_json::json!({
                    "Code": "NoPermission",
                    "Message": format!(
                        "key {KEY_ID} secret {SECRET} \u{1b}[31mnot allowed\u{7} SecurityToken=abc"
                    ),
                })),
        )
        .mount(&server)
        .await;
    let provider = AssumeRoleProvider::builder(common::credentials(), ROLE)
        .sts_endpoint(server.uri())
        .env(no_env())
        .build()
        .unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.code, "NoPermission");
    assert_eq!(api.request_id.as_deref(), Some("HDR-1"));
    assert!(api.message.contains("LTAI****wxyz"), "{}", api.message);
    assert!(api.message.contains("<redacted>"), "{}", api.message);
    let shown = format!("{err} {err:?}");
    for secret in [KEY_ID, SECRET, "\u{1b}", "\u{7}", "=abc"] {
        assert!(!shown.contains(secret), "{secret:?} in {shown}");
    }
}

#[tokio::test]
async fn oidc_server_failures_are_retried_without_a_signature() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("AssumeRoleWithOIDC"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream busy"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(ActionIs("AssumeRoleWithOIDC"))
        .respond_with(sts_ok(
            "STS.NOidcKeyId00000002",
            "oidc-secret",
            "oidc-token",
        ))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "eyJ.retried-token.sig").unwrap();
    let provider = OidcProvider::builder(ROLE, OIDC_PROVIDER, &file)
        .sts_endpoint(server.uri())
        .retry(fast_retries())
        .env(no_env())
        .build()
        .unwrap();
    let creds = provider.provide_credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "STS.NOidcKeyId00000002");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(param(request, "Signature"), None);
        assert_eq!(
            param(request, "OIDCToken").as_deref(),
            Some("eyJ.retried-token.sig")
        );
    }
}

fn oidc_env(token_file: &std::path::Path, sts: &str) -> Env {
    Env::from_vars([
        ("ALIBABA_CLOUD_ROLE_ARN", ROLE.to_string()),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER.to_string()),
        (
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("ALIBABA_CLOUD_STS_ENDPOINT", sts.to_string()),
        ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "pod-session".to_string()),
    ])
}

#[tokio::test]
async fn oidc_is_unsigned_and_reads_the_rotated_token_at_every_fetch() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(ActionIs("AssumeRoleWithOIDC"))
        .respond_with(sts_ok(
            "STS.NOidcKeyId00000001",
            "oidc-secret",
            "oidc-token",
        ))
        .expect(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJ.first-token.sig\n").unwrap();
    let provider = OidcProvider::from_env(&oidc_env(&token_file, &server.uri())).unwrap();
    let creds = provider.provide_credentials().await.unwrap();
    assert_eq!(creds.provider_name(), "oidc_role_arn");
    assert_eq!(creds.access_key_id(), "STS.NOidcKeyId00000001");
    assert_eq!(creds.parent_key_id(), None);
    // Kubernetes replaces the file (a new inode) between refreshes.
    let rotated = dir.path().join("token.new");
    std::fs::write(&rotated, "eyJ.second-token.sig").unwrap();
    std::fs::rename(&rotated, &token_file).unwrap();
    provider.provide_credentials().await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let tokens: Vec<_> = requests
        .iter()
        .map(|r| param(r, "OIDCToken").unwrap())
        .collect();
    assert_eq!(tokens, ["eyJ.first-token.sig", "eyJ.second-token.sig"]);
    for request in &requests {
        for absent in [
            "AccessKeyId",
            "Signature",
            "SignatureNonce",
            "SecurityToken",
        ] {
            assert_eq!(param(request, absent), None, "{absent}");
        }
        for (name, value) in [
            ("RoleArn", ROLE),
            ("OIDCProviderArn", OIDC_PROVIDER),
            ("RoleSessionName", "pod-session"),
            ("Version", "2015-04-01"),
            ("Format", "JSON"),
            ("DurationSeconds", "3600"),
        ] {
            assert_eq!(param(request, name).as_deref(), Some(value), "{name}");
        }
        assert!(param(request, "Timestamp").is_some());
        // Never in the URL, where proxies and access logs would keep it.
        assert_eq!(request.url.query(), None);
    }
}

#[tokio::test]
async fn oidc_configuration_errors_name_the_missing_variables() {
    let all_missing = OidcProvider::from_env(&no_env()).unwrap_err();
    assert!(all_missing.is_not_configured(), "{all_missing}");
    let half =
        OidcProvider::from_env(&Env::from_vars([("ALIBABA_CLOUD_ROLE_ARN", ROLE)])).unwrap_err();
    assert!(!half.is_not_configured());
    let text = half.to_string();
    assert!(
        text.contains(
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE are not set"
        ),
        "{text}"
    );
    // A missing, oversized or too-short token file is an error naming the file, not its content.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let provider = OidcProvider::from_env(&oidc_env(&file, "http://127.0.0.1:9")).unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    std::fs::write(&file, "abc").unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    assert!(err.to_string().contains("3 characters"), "{err}");
    std::fs::write(&file, "T".repeat(70 * 1024)).unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    assert!(common::error_chain(&err).contains("larger than"), "{err}");
}

#[tokio::test]
async fn oidc_error_answers_are_typed_and_never_echo_the_token() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("AssumeRoleWithOIDC"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "RequestId": "OIDC-ERR-1",
            "Code": "InvalidParameter.OIDCToken",
            "Message": "The token eyJ.the-secret-token.sig is expired"
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "eyJ.the-secret-token.sig").unwrap();
    let provider = OidcProvider::from_env(&oidc_env(&file, &server.uri())).unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameter.OIDCToken"));
    assert_eq!(err.request_id(), Some("OIDC-ERR-1"));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("the-secret-token"), "{shown}");
    assert!(format!("{provider:?}").contains("token_file"));
}

#[tokio::test]
async fn the_chain_remembers_the_provider_that_succeeded() {
    let home = home_with_config(CONFIG);
    let chain = DefaultChain::with_env(env_for(&home, &[]));
    assert_eq!(chain.selected(), None);
    let first = chain.resolve().await.unwrap();
    assert_eq!(
        chain.selected(),
        Some(aliyun_guard::credentials::Slot::CliProfile)
    );
    // The file changes; the remembered provider keeps answering (and does not re-read).
    std::fs::write(home.path().join(".aliyun/config.json"), "{ broken").unwrap();
    let again = chain.resolve().await.unwrap();
    assert_eq!(first.access_key_id(), again.access_key_id());
}

#[tokio::test]
async fn chain_slots_can_be_removed_and_the_region_is_exposed() {
    use aliyun_guard::credentials::Slot;
    let home = home_with_config(
        r#"{"current": "dev", "profiles": [{"name": "dev", "mode": "AK", "access_key_id": "LTAI5tDevKeyId000000dev1", "access_key_secret": "s", "region_id": "cn-shenzhen"}]}"#,
    );
    let chain = DefaultChain::builder()
        .env(env_for(&home, &[]))
        .without(Slot::CliProfile)
        .build();
    let err = chain.resolve().await.unwrap_err();
    assert!(err.is_not_configured(), "{err}");
    assert!(!err.to_string().contains("config.json"), "{err}");
    assert_eq!(chain.region(), None);
    let chain = DefaultChain::with_env(env_for(&home, &[]));
    assert_eq!(chain.region().as_deref(), Some("cn-shenzhen"));
    let chain = DefaultChain::with_env(env_for(&home, &[("ALIBABA_CLOUD_REGION_ID", "us-west-1")]));
    assert_eq!(chain.region().as_deref(), Some("us-west-1"));
    let chain = DefaultChain::with_env(env_for(&home, &[("ALIBABA_CLOUD_REGION_ID", "a.b/c")]));
    assert_eq!(chain.region(), None);
}

#[cfg(unix)]
#[tokio::test]
async fn planted_symlinks_are_refused_not_followed() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("elsewhere");
    std::fs::write(
        &target,
        "[default]\ntype = access_key\naccess_key_id = LTAI5tPlanted000000000bad\naccess_key_secret = s\n",
    )
    .unwrap();
    std::fs::create_dir_all(home.path().join(".alibabacloud")).unwrap();
    std::os::unix::fs::symlink(&target, home.path().join(".alibabacloud/credentials.ini")).unwrap();
    let err = DefaultChain::with_env(env_for(&home, &[]))
        .resolve()
        .await
        .unwrap_err();
    assert!(
        common::error_chain(&err).contains("symbolic link"),
        "{}",
        common::error_chain(&err)
    );
    std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
    std::os::unix::fs::symlink(&target, home.path().join(".aliyun/config.json")).unwrap();
    let err = ProfileProvider::from_env(&env_for(&home, &[]))
        .provide_credentials()
        .await
        .unwrap_err();
    assert!(common::error_chain(&err).contains("symbolic link"), "{err}");
}

#[tokio::test]
async fn source_profile_chains_are_bounded_and_named_profiles_must_exist() {
    let mut profiles = vec![serde_json::json!({"name": "p0", "mode": "AK",
        "access_key_id": "LTAI5tDeepKeyId0000deep", "access_key_secret": "s"})];
    for i in 1..=10 {
        profiles.push(
            serde_json::json!({"name": format!("p{i}"), "mode": "ChainableRamRoleArn",
            "source_profile": format!("p{}", i - 1), "ram_role_arn": ROLE}),
        );
    }
    let home = home_with_config(&serde_json::json!({"profiles": profiles}).to_string());
    let env = env_for(&home, &[]);
    let err = ProfileProvider::from_env(&env)
        .with_profile("p10")
        .provide_credentials()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("longer than 8"), "{err}");
    // A chain within the bound resolves (up to the STS call, not made here).
    assert!(
        ProfileProvider::from_env(&env)
            .with_profile("p3")
            .region()
            .is_none()
    );
    // Named in code, a missing profile is an error; named by ALIBABA_CLOUD_PROFILE (shared with
    // the INI file), it is "not configured".
    let err = ProfileProvider::from_env(&env)
        .with_profile("absent")
        .provide_credentials()
        .await
        .unwrap_err();
    assert!(
        !err.is_not_configured() && err.to_string().contains("is not in"),
        "{err}"
    );
    let err = ProfileProvider::from_env(&env_for(&home, &[("ALIBABA_CLOUD_PROFILE", "absent")]))
        .provide_credentials()
        .await
        .unwrap_err();
    assert!(err.is_not_configured(), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn oidc_follows_the_symlinks_of_a_kubernetes_projected_token() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("AssumeRoleWithOIDC"))
        .respond_with(sts_ok("STS.NOidcKeyId00000001", "s", "t"))
        .mount(&server)
        .await;
    // The layout of a projected volume: token -> ..data/token, ..data -> ..<timestamp>.
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("..2026_01");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("token"), "eyJ.projected-one.sig").unwrap();
    std::os::unix::fs::symlink("..2026_01", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/token", dir.path().join("token")).unwrap();
    let provider =
        OidcProvider::from_env(&oidc_env(&dir.path().join("token"), &server.uri())).unwrap();
    provider.provide_credentials().await.unwrap();
    // Rotation: a new directory, and ..data swapped atomically.
    let v2 = dir.path().join("..2026_02");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(v2.join("token"), "eyJ.projected-two.sig").unwrap();
    std::os::unix::fs::symlink("..2026_02", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    provider.provide_credentials().await.unwrap();
    let tokens: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| param(r, "OIDCToken").unwrap())
        .collect();
    assert_eq!(tokens, ["eyJ.projected-one.sig", "eyJ.projected-two.sig"]);
    // What the links lead to must still be a regular file.
    std::fs::remove_file(dir.path().join("token")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("token")).unwrap();
    let err = provider.provide_credentials().await.unwrap_err();
    assert!(common::error_chain(&err).contains("a device"), "{err}");
}
