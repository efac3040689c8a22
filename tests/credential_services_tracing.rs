//! Logs at TRACE level (this crate's, hyper's and reqwest's) while the ECS, URI and process
//! providers run show no metadata session token, secret or security token. Alone in its test
//! binary: tracing caches per-callsite interest (see tracing_hygiene.rs).

mod common;

use aliyun_guard::credentials::{
    CredentialsProvider, EcsRamRoleProvider, Env, ProcessProvider, UriProvider,
};
use common::Capture;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const IMDS_TOKEN: &str = "ImdsSessionToken-SECRET-7f3a";
const SECRET: &str = "ServiceSecretValue-0123456789";
const STS_TOKEN: &str = "ServiceSecurityToken-abcdef";

fn json() -> String {
    format!(
        r#"{{"Code":"Success","AccessKeyId":"STS.TraceKeyId00000000trc1","AccessKeySecret":"{SECRET}","SecurityToken":"{STS_TOKEN}","Expiration":"2031-09-26T03:46:38Z"}}"#
    )
}

#[test]
fn credential_services_log_no_secret_at_trace_level() {
    let capture = Capture::default();
    let subscriber = capture.subscriber(tracing::Level::TRACE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("PUT"))
                .and(path("/latest/api/token"))
                .respond_with(ResponseTemplate::new(200).set_body_string(IMDS_TOKEN))
                .mount(&server)
                .await;
            // The read with the token fails: the warning and the retry without it are logged.
            Mock::given(method("GET"))
                .and(path("/latest/meta-data/ram/security-credentials/R"))
                .and(header("x-aliyun-ecs-metadata-token", IMDS_TOKEN))
                .respond_with(ResponseTemplate::new(500))
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path("/latest/meta-data/ram/security-credentials/R"))
                .respond_with(ResponseTemplate::new(200).set_body_string(json()))
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path("/uri"))
                .respond_with(ResponseTemplate::new(200).set_body_string(json()))
                .mount(&server)
                .await;

            let ecs = EcsRamRoleProvider::builder()
                .env(Env::from_vars([("ALIBABA_CLOUD_ECS_METADATA", "R")]))
                .metadata_base_url_for_tests(server.uri())
                .build();
            ecs.provide_credentials().await.unwrap();
            let uri = UriProvider::new(format!("{}/uri?sig=QuerySecret99", server.uri()));
            uri.provide_credentials().await.unwrap();

            let dir = tempfile::tempdir().unwrap();
            let script = dir.path().join("p.sh");
            std::fs::write(
                &script,
                format!(
                    "printf '%s' '{}'",
                    json()
                        .replace("\"Code\":\"Success\",", "\"mode\":\"StsToken\",")
                        .replace("AccessKeyId", "access_key_id")
                        .replace("AccessKeySecret", "access_key_secret")
                        .replace("SecurityToken", "sts_token")
                        .replace("Expiration", "expiration")
                ),
            )
            .unwrap();
            let process =
                ProcessProvider::new(format!("sh '{}' --password ArgSecret42", script.display()));
            process.provide_credentials().await.unwrap();
        })
    });
    let logs = capture.take();
    assert!(
        logs.contains("IMDSv1"),
        "the fallback warning is logged:\n{logs}"
    );
    assert!(
        logs.contains("ecs_ram_role")
            && logs.contains("credential_uri")
            && logs.contains("external")
    );
    for needle in [
        IMDS_TOKEN,
        SECRET,
        STS_TOKEN,
        "QuerySecret99",
        "ArgSecret42",
    ] {
        assert!(!logs.contains(needle), "logs show {needle:?}:\n{logs}");
    }
}
