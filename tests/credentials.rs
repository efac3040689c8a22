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
        ("role", "RamRoleArn"),
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
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
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
