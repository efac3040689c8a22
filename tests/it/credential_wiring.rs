//! The ECS, credentials-URI and External providers reached through the CLI profile, the INI file
//! and the default chain (each provider is tested on its own in `credential_services.rs`).

use std::sync::Arc;

use aliyun_guard::credentials::{
    CredentialsProvider, DefaultChain, EcsRamRoleProvider, Env, ProfileProvider, Slot,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const URI_JSON: &str = r#"{"Code":"Success","AccessKeyId":"STS.WiredUriKeyId0000wire","AccessKeySecret":"WiredSecret","SecurityToken":"WiredToken","Expiration":"2031-09-26T03:46:38Z"}"#;

fn home_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = home.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    home
}

fn env_for(home: &tempfile::TempDir, extra: &[(&str, &str)]) -> Env {
    let mut vars: Vec<(String, String)> = vec![
        ("HOME".into(), home.path().display().to_string()),
        ("ALIBABA_CLOUD_ECS_METADATA_DISABLED".into(), "true".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Env::from_vars(vars)
}

async fn uri_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/creds"))
        .respond_with(ResponseTemplate::new(200).set_body_string(URI_JSON))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_credentials_uri_profile_uses_the_uri_provider() {
    let server = uri_server().await;
    let config = format!(
        r#"{{"current": "u", "profiles": [{{"name": "u", "mode": "credentialsuri",
            "credentials_uri": "{}/creds"}}]}}"#,
        server.uri()
    );
    let home = home_with(&[(".aliyun/config.json", &config)]);
    let creds = ProfileProvider::from_env(&env_for(&home, &[]))
        .provide_credentials()
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "STS.WiredUriKeyId0000wire");
    assert_eq!(creds.provider_name(), "credential_uri");
}

#[cfg(unix)]
#[tokio::test]
async fn an_external_profile_runs_its_process_command() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let script = home.path().join("creds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '%s' '{\"mode\":\"AK\",\"access_key_id\":\"LTAI5tExternalKey000ext1\",\"access_key_secret\":\"ExternalSecret\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = format!(
        r#"{{"current": "x", "profiles": [{{"name": "x", "mode": "External",
            "process_command": "{}"}}]}}"#,
        script.display()
    );
    std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
    std::fs::write(home.path().join(".aliyun/config.json"), config).unwrap();
    let creds = ProfileProvider::from_env(&env_for(&home, &[]))
        .provide_credentials()
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "LTAI5tExternalKey000ext1");
    assert_eq!(creds.provider_name(), "external");
}

#[tokio::test]
async fn the_chain_reaches_the_credentials_uri_slot_and_remembers_it() {
    let server = uri_server().await;
    let home = tempfile::tempdir().unwrap();
    let uri = format!("{}/creds", server.uri());
    let chain = DefaultChain::with_env(env_for(&home, &[("ALIBABA_CLOUD_CREDENTIALS_URI", &uri)]));
    let creds = chain.provide_credentials().await.unwrap();
    assert_eq!(creds.provider_name(), "credential_uri");
    assert_eq!(chain.selected(), Some(Slot::CredentialsUri));
    // The URI provider does not serve stale values, and the chain says as its provider does.
    assert!(!chain.serve_stale_on_failure());
}

#[tokio::test]
async fn an_ecs_profile_is_served_by_the_ecs_provider() {
    // The metadata service is disabled by the environment: the profile reaches the ECS
    // provider, which says so (rather than a "not wired" placeholder).
    let home = home_with(&[(
        ".aliyun/config.json",
        r#"{"current": "e", "profiles": [{"name": "e", "mode": "EcsRamRole", "ram_role_name": "MyRole"}]}"#,
    )]);
    let err = ProfileProvider::from_env(&env_for(&home, &[]))
        .provide_credentials()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ALIBABA_CLOUD_ECS_METADATA_DISABLED"), "{err}");
    assert!(!err.contains("wired"), "{err}");
}

#[test]
fn the_ecs_provider_serves_stale_values_through_the_trait() {
    let provider: Arc<dyn CredentialsProvider> = Arc::new(EcsRamRoleProvider::from_env(
        Env::from_vars::<String, String>([]),
    ));
    assert!(provider.serve_stale_on_failure());
}

#[test]
fn the_default_chain_gives_the_client_its_default_region() {
    use aliyun_guard::Client;
    let home = home_with(&[(
        ".aliyun/config.json",
        r#"{"current": "p", "profiles": [{"name": "p", "mode": "AK", "access_key_id": "LTAI5tRegionKey00000reg1",
            "access_key_secret": "s", "region_id": "cn-shenzhen"}]}"#,
    )]);
    let from_profile = Client::builder()
        .default_chain(DefaultChain::with_env(env_for(&home, &[])))
        .build()
        .unwrap();
    assert_eq!(from_profile.default_region(), Some("cn-shenzhen"));
    let from_var = Client::builder()
        .default_chain(DefaultChain::with_env(env_for(
            &home,
            &[("ALIBABA_CLOUD_REGION_ID", "cn-beijing")],
        )))
        .build()
        .unwrap();
    assert_eq!(from_var.default_region(), Some("cn-beijing"));
    let explicit = Client::builder()
        .region("eu-central-1")
        .default_chain(DefaultChain::with_env(env_for(&home, &[])))
        .build()
        .unwrap();
    assert_eq!(explicit.default_region(), Some("eu-central-1"));
    let hostile = Client::builder()
        .default_chain(DefaultChain::with_env(env_for(
            &home,
            &[("ALIBABA_CLOUD_REGION_ID", "evil.com/x")],
        )))
        .build()
        .unwrap();
    // An invalid region id never becomes part of a host name.
    assert_eq!(hostile.default_region(), None);
}
