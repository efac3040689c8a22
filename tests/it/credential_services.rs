//! The ECS metadata, credentials-URI and external-process providers, against loopback mocks and
//! scripts in temporary directories. Nothing reads the real environment or home directory.

use std::future::Future;
use std::time::Duration;

use aliyun_guard::Error;
use aliyun_guard::credentials::{
    CredentialsErrorKind, CredentialsProvider, EcsRamRoleProvider, Env, ProcessProvider,
    UriProvider,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Liveness bound for anything that must not hang; far above any expected duration.
const HANG_GUARD: Duration = Duration::from_secs(30);

const SECRET: &str = "EcsSecretValue-0123456789";
const TOKEN: &str = "EcsSecurityTokenValue-abcdef";
const ROLE_JSON: &str = r#"{"Code":"Success","AccessKeyId":"STS.EcsKeyId0000000000ecs1","AccessKeySecret":"EcsSecretValue-0123456789","SecurityToken":"EcsSecurityTokenValue-abcdef","Expiration":"2031-09-26T03:46:38Z","LastUpdated":"2031-09-26T09:46:38Z"}"#;

const TOKEN_PATH: &str = "/latest/api/token";
const ROLES: &str = "/latest/meta-data/ram/security-credentials/";
const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";

async fn guarded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .expect("hang guard: the provider did not finish")
}

fn env(vars: &[(&str, &str)]) -> Env {
    Env::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn ecs(server: &MockServer, vars: &[(&str, &str)]) -> EcsRamRoleProvider {
    EcsRamRoleProvider::builder()
        .env(env(vars))
        .metadata_base_url_for_tests(server.uri())
        .build()
}

fn kind(err: &Error) -> CredentialsErrorKind {
    match err {
        Error::Credentials { kind, .. } => *kind,
        other => panic!("not a credentials error: {other:?}"),
    }
}

/// The whole error chain as text, to check that no secret is in it.
fn full_text(err: &Error) -> String {
    let mut text = format!("{err} / {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(" / {s}"));
        source = s.source();
    }
    text
}

fn no_token_header(request: &Request) -> bool {
    !request.headers.contains_key(TOKEN_HEADER)
}

async fn mount_token(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("PUT"))
        .and(path(TOKEN_PATH))
        .and(header("x-aliyun-ecs-metadata-token-ttl-seconds", "21600"))
        .respond_with(response)
        .expect(1)
        .mount(server)
        .await;
}

// ------------------------------------------------------------------------------------------
// ECS instance RAM role

#[tokio::test]
async fn ecs_happy_path_with_token_and_discovery() {
    let server = MockServer::start().await;
    mount_token(
        &server,
        ResponseTemplate::new(200).set_body_string("tok-123"),
    )
    .await;
    Mock::given(method("GET"))
        .and(path(ROLES))
        .and(header(TOKEN_HEADER, "tok-123"))
        .respond_with(ResponseTemplate::new(200).set_body_string("  MyEcsRole\n"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}MyEcsRole")))
        .and(header(TOKEN_HEADER, "tok-123"))
        .respond_with(ResponseTemplate::new(200).set_body_string(ROLE_JSON))
        .expect(1)
        .mount(&server)
        .await;

    let provider = ecs(&server, &[]);
    assert!(provider.serve_stale_on_failure());
    let creds = guarded(provider.provide_credentials()).await.unwrap();
    assert_eq!(creds.access_key_id(), "STS.EcsKeyId0000000000ecs1");
    assert_eq!(creds.security_token(), Some(TOKEN));
    assert_eq!(creds.provider_name(), "ecs_ram_role");
    assert_eq!(creds.expiry().unwrap().unix_timestamp(), 1_948_160_798);
    assert!(!format!("{provider:?}").contains("tok-123"));
}

#[tokio::test]
async fn ecs_role_from_env_skips_discovery_and_accepts_milliseconds() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    Mock::given(method("GET"))
        .and(path(ROLES))
        .respond_with(ResponseTemplate::new(200).set_body_string("Other"))
        .expect(0)
        .mount(&server)
        .await;
    let json = ROLE_JSON.replace("03:46:38Z", "03:46:38.500Z");
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}EnvRole")))
        .and(header(TOKEN_HEADER, "tok"))
        .respond_with(ResponseTemplate::new(200).set_body_string(json))
        .expect(1)
        .mount(&server)
        .await;
    let provider = ecs(&server, &[("ALIBABA_CLOUD_ECS_METADATA", "EnvRole")]);
    let creds = guarded(provider.provide_credentials()).await.unwrap();
    assert_eq!(creds.expiry().unwrap().unix_timestamp(), 1_948_160_798);
}

#[tokio::test]
async fn ecs_builder_role_wins_over_env() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}BuilderRole")))
        .respond_with(ResponseTemplate::new(200).set_body_string(ROLE_JSON))
        .expect(1)
        .mount(&server)
        .await;
    let provider = EcsRamRoleProvider::builder()
        .env(env(&[("ALIBABA_CLOUD_ECS_METADATA", "EnvRole")]))
        .role_name("BuilderRole")
        .metadata_base_url_for_tests(server.uri())
        .build();
    guarded(provider.provide_credentials()).await.unwrap();
}

async fn v1_only_role(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(ROLES))
        .and(no_token_header)
        .respond_with(ResponseTemplate::new(200).set_body_string("V1Role"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}V1Role")))
        .and(no_token_header)
        .respond_with(ResponseTemplate::new(200).set_body_string(ROLE_JSON))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn ecs_token_403_falls_back_to_v1() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(403)).await;
    v1_only_role(&server).await;
    let creds = guarded(ecs(&server, &[]).provide_credentials())
        .await
        .unwrap();
    assert_eq!(creds.security_token(), Some(TOKEN));
}

#[tokio::test]
async fn ecs_token_that_stalls_times_out_and_falls_back_to_v1() {
    let server = MockServer::start().await;
    mount_token(
        &server,
        ResponseTemplate::new(200)
            .set_body_string("late-token")
            .set_delay(Duration::from_secs(60)),
    )
    .await;
    v1_only_role(&server).await;
    // Default 1 s timeouts; the hang guard only checks liveness.
    let creds = guarded(ecs(&server, &[]).provide_credentials())
        .await
        .unwrap();
    assert_eq!(creds.provider_name(), "ecs_ram_role");
}

#[tokio::test]
async fn ecs_fallback_refused_when_imdsv1_disabled() {
    for vars in [
        &[("ALIBABA_CLOUD_IMDSV1_DISABLED", "TRUE")][..],
        &[("ALIBABA_CLOUD_IMDSV1_DISABLED", "true")][..],
    ] {
        let server = MockServer::start().await;
        mount_token(&server, ResponseTemplate::new(403)).await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string(ROLE_JSON))
            .expect(0)
            .mount(&server)
            .await;
        let err = guarded(ecs(&server, vars).provide_credentials())
            .await
            .unwrap_err();
        assert_eq!(kind(&err), CredentialsErrorKind::Unavailable);
        let text = err.to_string();
        assert!(text.contains("step 1/3") && text.contains("403"), "{text}");
        assert!(text.contains("ALIBABA_CLOUD_IMDSV1_DISABLED"), "{text}");
    }
    // The builder's word too, without the variable.
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(500)).await;
    let provider = EcsRamRoleProvider::builder()
        .env(env(&[]))
        .imdsv1_fallback(false)
        .metadata_base_url_for_tests(server.uri())
        .build();
    let err = guarded(provider.provide_credentials()).await.unwrap_err();
    assert!(err.to_string().contains("step 1/3"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn ecs_read_with_token_failing_is_retried_without_it() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}R")))
        .and(header(TOKEN_HEADER, "tok"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}R")))
        .and(no_token_header)
        .respond_with(ResponseTemplate::new(200).set_body_string(ROLE_JSON))
        .expect(1)
        .mount(&server)
        .await;
    let provider = ecs(&server, &[("ALIBABA_CLOUD_ECS_METADATA", "R")]);
    guarded(provider.provide_credentials()).await.unwrap();
}

#[tokio::test]
async fn ecs_code_other_than_success_is_refused() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    let json = ROLE_JSON.replace(r#""Code":"Success""#, r#""Code":"Failed""#);
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}R")))
        .respond_with(ResponseTemplate::new(200).set_body_string(json))
        .mount(&server)
        .await;
    let err = guarded(ecs(&server, &[("ALIBABA_CLOUD_ECS_METADATA", "R")]).provide_credentials())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Unavailable);
    let text = full_text(&err);
    assert!(
        text.contains("\"Failed\"") && text.contains("step 3/3"),
        "{text}"
    );
    assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn ecs_no_role_attached_is_not_configured() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    Mock::given(method("GET"))
        .and(path(ROLES))
        .respond_with(ResponseTemplate::new(404))
        .expect(1) // a 404 is an answer: not retried without the token
        .mount(&server)
        .await;
    let err = guarded(ecs(&server, &[]).provide_credentials())
        .await
        .unwrap_err();
    assert!(err.is_not_configured(), "{err}");
    assert!(err.to_string().contains("no RAM role is attached"), "{err}");
}

#[tokio::test]
async fn ecs_named_role_not_attached_is_invalid() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}Missing")))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let err =
        guarded(ecs(&server, &[("ALIBABA_CLOUD_ECS_METADATA", "Missing")]).provide_credentials())
            .await
            .unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Invalid);
    assert!(err.to_string().contains("\"Missing\""), "{err}");
}

#[tokio::test]
async fn ecs_malformed_json_never_echoes_the_body() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    let body = format!(r#"{{"Code":"Success","AccessKeySecret":["{SECRET}"], "#);
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}R")))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    let err = guarded(ecs(&server, &[("ALIBABA_CLOUD_ECS_METADATA", "R")]).provide_credentials())
        .await
        .unwrap_err();
    let text = full_text(&err);
    assert!(text.contains("not the expected JSON"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[tokio::test]
async fn ecs_oversized_body_is_refused() {
    let server = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    let padding = "x".repeat(70 * 1024);
    let body = ROLE_JSON.replace(
        "\"LastUpdated\"",
        &format!("\"Pad\":\"{padding}\",\"LastUpdated\""),
    );
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}R")))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    let err = guarded(ecs(&server, &[("ALIBABA_CLOUD_ECS_METADATA", "R")]).provide_credentials())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than 65536 bytes"), "{err}");
}

#[tokio::test]
async fn ecs_disabled_by_env_is_not_configured_and_sends_nothing() {
    let server = MockServer::start().await;
    let provider = ecs(&server, &[("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "True")]);
    let err = guarded(provider.provide_credentials()).await.unwrap_err();
    assert!(err.is_not_configured(), "{err}");
    assert!(
        err.to_string()
            .contains("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn ecs_invalid_role_names_never_reach_a_path() {
    let server = MockServer::start().await;
    for bad in ["../../latest/api/token", "a/b", "role\nx", ".."] {
        let provider = ecs(&server, &[("ALIBABA_CLOUD_ECS_METADATA", bad)]);
        let err = guarded(provider.provide_credentials()).await.unwrap_err();
        assert_eq!(kind(&err), CredentialsErrorKind::Invalid, "{bad:?}");
        assert!(
            err.to_string().contains("ALIBABA_CLOUD_ECS_METADATA"),
            "{err}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());

    // A discovered name is checked too.
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    Mock::given(method("GET"))
        .and(path(ROLES))
        .respond_with(ResponseTemplate::new(200).set_body_string("../evil"))
        .mount(&server)
        .await;
    let err = guarded(ecs(&server, &[]).provide_credentials())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Unavailable);
    assert!(err.to_string().contains("step 2/3"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn ecs_unreachable_service_is_not_configured_unless_a_role_is_named() {
    // A port that nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let provider = EcsRamRoleProvider::builder()
        .env(env(&[]))
        .metadata_base_url_for_tests(&base)
        .build();
    let err = guarded(provider.provide_credentials()).await.unwrap_err();
    assert!(err.is_not_configured(), "{err}");
    assert!(err.to_string().contains("not reachable"), "{err}");

    let provider = EcsRamRoleProvider::builder()
        .env(env(&[]))
        .role_name("Named")
        .metadata_base_url_for_tests(&base)
        .build();
    let err = guarded(provider.provide_credentials()).await.unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn ecs_base_url_is_loopback_only_and_token_ttl_is_checked() {
    let provider = EcsRamRoleProvider::builder()
        .env(env(&[]))
        .metadata_base_url_for_tests("http://198.51.100.7")
        .build();
    let err = guarded(provider.provide_credentials()).await.unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Invalid, "{err}");

    let server = MockServer::start().await;
    for ttl in [0, 21_601] {
        let provider = EcsRamRoleProvider::builder()
            .env(env(&[]))
            .token_ttl_seconds(ttl)
            .metadata_base_url_for_tests(server.uri())
            .build();
        let err = guarded(provider.provide_credentials()).await.unwrap_err();
        assert_eq!(kind(&err), CredentialsErrorKind::Invalid, "{err}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());

    Mock::given(method("PUT"))
        .and(path(TOKEN_PATH))
        .and(header("x-aliyun-ecs-metadata-token-ttl-seconds", "60"))
        .respond_with(ResponseTemplate::new(200).set_body_string("tok"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}R")))
        .and(header(TOKEN_HEADER, "tok"))
        .respond_with(ResponseTemplate::new(200).set_body_string(ROLE_JSON))
        .mount(&server)
        .await;
    let provider = EcsRamRoleProvider::builder()
        .env(env(&[]))
        .role_name("R")
        .token_ttl_seconds(60)
        .metadata_base_url_for_tests(server.uri())
        .build();
    guarded(provider.provide_credentials()).await.unwrap();
}

#[tokio::test]
async fn ecs_redirects_are_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    mount_token(&server, ResponseTemplate::new(200).set_body_string("tok")).await;
    Mock::given(method("GET"))
        .and(path(format!("{ROLES}R")))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/steal", elsewhere.uri())),
        )
        .mount(&server)
        .await;
    let err = guarded(
        EcsRamRoleProvider::builder()
            .env(env(&[("ALIBABA_CLOUD_ECS_METADATA", "R")]))
            .imdsv1_fallback(false)
            .metadata_base_url_for_tests(server.uri())
            .build()
            .provide_credentials(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("302"), "{err}");
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

// ------------------------------------------------------------------------------------------
// Credentials URI

const URI_JSON: &str = r#"{"Code":"Success","AccessKeyId":"STS.UriKeyId0000000000uri1","AccessKeySecret":"UriSecretValue-0123456789","SecurityToken":"UriSecurityToken-abcdef","Expiration":"2031-09-26T03:46:38Z"}"#;

#[tokio::test]
async fn uri_happy_path_from_env() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/creds"))
        .respond_with(ResponseTemplate::new(200).set_body_string(URI_JSON))
        .expect(1)
        .mount(&server)
        .await;
    let uri = format!("{}/creds", server.uri());
    let provider = UriProvider::from_env(env(&[("ALIBABA_CLOUD_CREDENTIALS_URI", &uri)]));
    let creds = guarded(provider.provide_credentials()).await.unwrap();
    assert_eq!(creds.access_key_id(), "STS.UriKeyId0000000000uri1");
    assert_eq!(creds.security_token(), Some("UriSecurityToken-abcdef"));
    assert_eq!(creds.provider_name(), "credential_uri");
    assert!(creds.expiry().is_some());
}

#[tokio::test]
async fn uri_unset_is_not_configured() {
    let err = guarded(UriProvider::from_env(env(&[])).provide_credentials())
        .await
        .unwrap_err();
    assert!(err.is_not_configured(), "{err}");
    assert!(err.to_string().contains("ALIBABA_CLOUD_CREDENTIALS_URI"));
}

#[tokio::test]
async fn uri_errors_show_only_scheme_and_host() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string(URI_JSON))
        .mount(&server)
        .await;
    let port = server.address().port();
    let uri = format!("http://user:Pa55word@127.0.0.1:{port}/creds?token=QueryToken42");
    let err = guarded(UriProvider::new(&uri).provide_credentials())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Unavailable);
    let text = full_text(&err);
    assert!(text.contains("500"), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    for secret in ["Pa55word", "QueryToken42", "/creds", "UriSecretValue"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn uri_must_be_http_or_https() {
    for bad in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "gopher://x:Secret@h/",
    ] {
        let err = guarded(UriProvider::new(bad).provide_credentials())
            .await
            .unwrap_err();
        assert_eq!(kind(&err), CredentialsErrorKind::Invalid, "{bad}");
        assert!(!full_text(&err).contains("Secret"), "{err}");
    }
}

#[tokio::test]
async fn uri_code_malformed_oversized_and_redirect() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/code"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(URI_JSON.replace("\"Success\"", "\"Throttled\"")),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/malformed"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"Code":"Success","AccessKeySecret":7"#),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_string("y".repeat(65 * 1024)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/redirect"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", format!("{}/x", elsewhere.uri())),
        )
        .mount(&server)
        .await;
    for (route, expected) in [
        ("/code", "\"Throttled\""),
        ("/malformed", "not the expected JSON"),
        ("/big", "more than 65536 bytes"),
        ("/redirect", "HTTP 307"),
    ] {
        let provider = UriProvider::new(format!("{}{route}", server.uri()));
        let err = guarded(provider.provide_credentials()).await.unwrap_err();
        assert_eq!(kind(&err), CredentialsErrorKind::Unavailable, "{route}");
        assert!(err.to_string().contains(expected), "{route}: {err}");
    }
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn uri_stall_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(URI_JSON)
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let provider = UriProvider::new(server.uri())
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(1));
    let err = guarded(provider.provide_credentials()).await.unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}

// ------------------------------------------------------------------------------------------
// External process

/// Writes a script and returns a command running it through `sh` (no exec of a file that was
/// just written: that races with other tests' forks, ETXTBSY).
fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let file = dir.path().join(name);
    std::fs::write(&file, format!("#!/bin/sh\n{body}\n")).unwrap();
    format!("sh '{}'", file.display())
}

#[tokio::test]
async fn process_ak_and_sts_token() {
    let dir = tempfile::tempdir().unwrap();
    let ak = script(
        &dir,
        "ak.sh",
        r#"printf '%s' '{"mode":"AK","access_key_id":"LTAI5tProcKeyId00000proc","access_key_secret":"ProcSecret-1"}'"#,
    );
    let creds = guarded(ProcessProvider::new(ak).provide_credentials())
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "LTAI5tProcKeyId00000proc");
    assert!(!creds.is_sts());
    assert_eq!(creds.provider_name(), "external");

    let sts = script(
        &dir,
        "sts.sh",
        r#"echo "oops on stderr: ProcSecret-2" >&2
printf '%s\n' '{"mode":"ststoken","access_key_id":"STS.ProcKeyId000000proc2","access_key_secret":"ProcSecret-2","sts_token":"ProcToken-2","expiration":"2031-09-26T03:46:38Z"}'"#,
    );
    let creds = guarded(ProcessProvider::new(sts).provide_credentials())
        .await
        .unwrap();
    assert_eq!(creds.security_token(), Some("ProcToken-2"));
    assert_eq!(creds.expiry().unwrap().unix_timestamp(), 1_948_160_798);
}

#[tokio::test]
async fn process_arguments_are_split_with_quotes_and_no_shell() {
    let dir = tempfile::tempdir().unwrap();
    // Prints its two arguments as key id and secret: a quoted argument stays one word, `$HOME`
    // and `;` are not interpreted.
    let cmd = script(
        &dir,
        "args.sh",
        r#"printf '{"mode":"AK","access_key_id":"%s","access_key_secret":"%s"}' "$1" "$2""#,
    );
    let creds = guarded(
        ProcessProvider::new(format!("{cmd} LTAI5tQuotedKeyId000quot 'a secret;$HOME'"))
            .provide_credentials(),
    )
    .await
    .unwrap();
    assert_eq!(creds.access_key_id(), "LTAI5tQuotedKeyId000quot");

    for (bad, expected) in [("", "empty"), ("sh 'unbalanced", "unbalanced")] {
        let err = guarded(ProcessProvider::new(bad).provide_credentials())
            .await
            .unwrap_err();
        assert_eq!(kind(&err), CredentialsErrorKind::Invalid);
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = guarded(
        ProcessProvider::new("/nonexistent/aliyun-guard-helper --token SecretArg")
            .provide_credentials(),
    )
    .await
    .unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Invalid);
    let text = full_text(&err);
    assert!(
        text.contains("cannot start") && text.contains("aliyun-guard-helper"),
        "{text}"
    );
    assert!(!text.contains("SecretArg"), "{text}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn process_that_hangs_is_killed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // `exec` keeps the pid: the program killed is the one that wrote it.
    let cmd = script(
        &dir,
        "hang.sh",
        &format!("echo $$ > '{}'\nexec sleep 30", pidfile.display()),
    );
    let provider = ProcessProvider::new(cmd).with_timeout(Duration::from_secs(1));
    let err = guarded(provider.provide_credentials()).await.unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Unavailable);
    assert!(
        err.to_string().contains("did not finish within 1s"),
        "{err}"
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    // Killed and reaped: the process no longer exists.
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "process {pid} still exists"
    );
}

#[tokio::test]
async fn process_plain_sleep_with_short_timeout() {
    let provider = ProcessProvider::new("sleep 30").with_timeout(Duration::from_secs(1));
    let err = guarded(provider.provide_credentials()).await.unwrap_err();
    assert!(err.to_string().contains("did not finish"), "{err}");
}

#[tokio::test]
async fn process_huge_output_is_cut_and_killed() {
    let dir = tempfile::tempdir().unwrap();
    // Endless output: the read stops at the cap and the program is killed.
    let cmd = script(&dir, "yes.sh", "exec yes ProcSecretLine");
    let err = guarded(ProcessProvider::new(cmd).provide_credentials())
        .await
        .unwrap_err();
    let text = full_text(&err);
    assert!(text.contains("more than 65536 bytes"), "{text}");
    assert!(!text.contains("ProcSecretLine"), "{text}");
}

#[tokio::test]
async fn process_bad_json_and_bad_fields() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body, expected) in [
        (
            "bad.sh",
            r#"printf 'access_key_secret=ProcSecret-9'"#,
            "not the expected JSON",
        ),
        (
            "type.sh",
            r#"printf '{"mode":"AK","access_key_id":"LTAI5tX","access_key_secret":["ProcSecret-9"]}'"#,
            "not the expected JSON",
        ),
        (
            "mode.sh",
            r#"printf '{"mode":"CloudSSO","access_key_id":"LTAI5tX","access_key_secret":"ProcSecret-9"}'"#,
            "\"CloudSSO\"",
        ),
        (
            "sts.sh",
            r#"printf '{"mode":"StsToken","access_key_id":"LTAI5tX","access_key_secret":"ProcSecret-9"}'"#,
            "sts_token",
        ),
        (
            "exp.sh",
            r#"printf '{"mode":"AK","access_key_id":"LTAI5tX","access_key_secret":"ProcSecret-9","expiration":"tomorrow"}'"#,
            "expiration",
        ),
    ] {
        let cmd = script(&dir, name, body);
        let err = guarded(ProcessProvider::new(cmd).provide_credentials())
            .await
            .unwrap_err();
        assert_eq!(kind(&err), CredentialsErrorKind::Invalid, "{name}");
        let text = full_text(&err);
        assert!(text.contains(expected), "{name}: {text}");
        assert!(!text.contains("ProcSecret-9"), "{name}: {text}");
    }
}

#[tokio::test]
async fn process_non_zero_exit_reports_the_status_not_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = script(
        &dir,
        "fail.sh",
        r#"printf '{"mode":"AK","access_key_id":"LTAI5tX","access_key_secret":"ProcSecret-7"}'
echo "ProcSecret-7" >&2
exit 3"#,
    );
    let err = guarded(ProcessProvider::new(cmd).provide_credentials())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), CredentialsErrorKind::Unavailable);
    let text = full_text(&err);
    assert!(text.contains("exit status: 3"), "{text}");
    assert!(!text.contains("ProcSecret-7"), "{text}");
}
