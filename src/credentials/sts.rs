//! What AssumeRole and AssumeRoleWithOIDC share: the STS endpoint, the session name, the
//! duration, and the parser of the `Credentials` object STS answers with.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use super::{Credentials, CredentialsErrorKind, Env};
use crate::endpoint;
use crate::error::Error;

/// API version of STS.
pub(crate) const STS_VERSION: &str = "2015-04-01";
/// Product code of STS.
pub(crate) const STS_PRODUCT: &str = "Sts";
/// The global STS host.
pub(crate) const STS_GLOBAL_HOST: &str = "sts.aliyuncs.com";

/// Variable: STS endpoint override (a host, or a full URL).
pub(crate) const STS_ENDPOINT_VAR: &str = "ALIBABA_CLOUD_STS_ENDPOINT";
/// Variable: STS region (`sts.<region>.aliyuncs.com`).
pub(crate) const STS_REGION_VAR: &str = "ALIBABA_CLOUD_STS_REGION";
/// Variable: `true` for the VPC STS endpoint (with a region only).
pub(crate) const VPC_ENABLED_VAR: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";
/// Variable: the default role session name.
pub(crate) const ROLE_SESSION_NAME_VAR: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";

/// Shortest role session (seconds).
pub(crate) const MIN_DURATION: u32 = 900;
/// Longest role session (seconds).
pub(crate) const MAX_DURATION: u32 = 43_200;
/// Default role session (seconds).
pub(crate) const DEFAULT_DURATION: u32 = 3_600;

/// Connect timeout of STS calls, as the official libraries.
pub(crate) const STS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read timeout of STS calls, as the official libraries.
pub(crate) const STS_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether an environment flag is `true` (case-insensitive).
pub(crate) fn env_flag(env: &Env, name: &str) -> bool {
    env.get(name)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Checks that `region` is one DNS label (letters, digits and `-`, 1 to 63 characters, no `-`
/// at either end) and returns it in lower case. `what` names where it came from.
pub(crate) fn validate_region(region: &str, what: &str) -> Result<String, Error> {
    let r = region.trim();
    let ok = !r.is_empty()
        && r.len() <= 63
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !r.starts_with('-')
        && !r.ends_with('-');
    if ok {
        Ok(r.to_ascii_lowercase())
    } else {
        // The value is shown only when it is short and printable: it is not a secret, but it
        // may be anything.
        let shown = if r.len() <= 63 && r.bytes().all(|b| b.is_ascii_graphic()) {
            format!(" {r:?}")
        } else {
            String::new()
        };
        Err(Error::credentials_invalid(format!(
            "{what}: the region{shown} is not a region id (letters, digits and '-', at most 63)"
        )))
    }
}

/// Where STS calls go, in order: an explicit endpoint (builder), `ALIBABA_CLOUD_STS_ENDPOINT`,
/// a region (builder or profile, else `ALIBABA_CLOUD_STS_REGION`) giving
/// `sts.<region>.aliyuncs.com` or, with VPC enabled (builder or profile, else
/// `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), `sts-vpc.<region>.aliyuncs.com`; else
/// `sts.aliyuncs.com`. An endpoint is a host (HTTPS) or a full URL; plain `http://` only when
/// written out.
#[derive(Debug, Clone, Default)]
pub(crate) struct StsEndpoint {
    pub(crate) explicit: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) vpc: Option<bool>,
}

impl StsEndpoint {
    /// Resolves the endpoint URL, reading the variables from `env`.
    pub(crate) fn resolve(&self, env: &Env) -> Result<Url, Error> {
        if let Some(explicit) = self.explicit.as_deref().filter(|e| !e.trim().is_empty()) {
            return endpoint::parse_explicit(explicit);
        }
        if let Some(from_env) = env.get(STS_ENDPOINT_VAR) {
            return endpoint::parse_explicit(&from_env).map_err(|e| {
                Error::credentials_kind(
                    CredentialsErrorKind::Invalid,
                    format!("{STS_ENDPOINT_VAR} is not a valid endpoint"),
                    Some(Box::new(e)),
                )
            });
        }
        let (region, what) = match self.region.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(r) => (Some(r.to_string()), "the STS region"),
            None => (env.get(STS_REGION_VAR), STS_REGION_VAR),
        };
        let host = match region {
            Some(region) => {
                let region = validate_region(&region, what)?;
                let vpc = self.vpc.unwrap_or_else(|| env_flag(env, VPC_ENABLED_VAR));
                if vpc {
                    format!("sts-vpc.{region}.aliyuncs.com")
                } else {
                    format!("sts.{region}.aliyuncs.com")
                }
            }
            None => STS_GLOBAL_HOST.to_string(),
        };
        endpoint::parse_explicit(&format!("https://{host}"))
    }
}

/// The session name: the one given, else `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else generated
/// (`aliyun-guard-<unix seconds>`); 2 to 64 characters of `[A-Za-z0-9.@_-]`.
pub(crate) fn session_name(given: Option<&str>, env: &Env) -> Result<String, Error> {
    let (name, what) = match given.filter(|n| !n.is_empty()) {
        Some(n) => (n.to_string(), "the role session name"),
        None => match env.get(ROLE_SESSION_NAME_VAR) {
            Some(n) => (n, ROLE_SESSION_NAME_VAR),
            None => {
                return Ok(format!(
                    "aliyun-guard-{}",
                    OffsetDateTime::now_utc().unix_timestamp()
                ));
            }
        },
    };
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".@_-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(Error::credentials_invalid(format!(
            "{what} must be 2 to 64 characters of letters, digits, '.', '@', '_' and '-'"
        )))
    }
}

/// Checks a session duration (900 to 43,200 seconds).
pub(crate) fn validate_duration(seconds: u32) -> Result<u32, Error> {
    if (MIN_DURATION..=MAX_DURATION).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(Error::credentials_invalid(format!(
            "the role session duration {seconds} s is outside {MIN_DURATION}..={MAX_DURATION} s"
        )))
    }
}

/// Checks a role ARN: `acs:ram::<account>:role/<name>`, visible ASCII, at most 2,048 bytes.
pub(crate) fn validate_role_arn(arn: &str, what: &str) -> Result<String, Error> {
    let arn = arn.trim();
    let ok = arn.len() <= 2048
        && arn.bytes().all(|b| b.is_ascii_graphic())
        && arn.starts_with("acs:ram::")
        && arn.contains(":role/");
    if ok {
        Ok(arn.to_string())
    } else {
        Err(Error::credentials_invalid(format!(
            "{what} is not a role ARN (acs:ram::<account id>:role/<role name>)"
        )))
    }
}

/// Checks the optional policy (1 to 2,048 characters).
pub(crate) fn validate_policy(policy: Option<String>) -> Result<Option<String>, Error> {
    match policy.filter(|p| !p.trim().is_empty()) {
        Some(p) if p.chars().count() > 2048 => Err(Error::credentials_invalid(
            "the role session policy is longer than 2,048 characters",
        )),
        other => Ok(other),
    }
}

/// Turns an STS answer into credentials: its `Credentials` object (`AccessKeyId`,
/// `AccessKeySecret`, `SecurityToken`, `Expiration` as `YYYY-MM-DDThh:mm:ssZ`). A malformed
/// answer is `Unavailable`, with a message naming the missing field and never a value.
pub(crate) fn parse_credentials(
    answer: &Value,
    action: &str,
    provider: &'static str,
) -> Result<Credentials, Error> {
    let request_id = answer
        .get("RequestId")
        .and_then(Value::as_str)
        .filter(|r| r.len() <= 128 && r.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("unknown");
    let bad = |what: &str| {
        Error::credentials_kind(
            CredentialsErrorKind::Unavailable,
            format!("the {action} answer (request id {request_id}) {what}"),
            None,
        )
    };
    let object = answer
        .get("Credentials")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("has no Credentials object"))?;
    let field = |name: &str| -> Result<&str, Error> {
        object
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(&format!("has no {name} string in Credentials")))
    };
    let key_id = field("AccessKeyId")?;
    let secret = field("AccessKeySecret")?;
    let token = field("SecurityToken")?;
    let expiration = field("Expiration")?;
    if !key_id.bytes().all(|b| b.is_ascii_graphic()) || key_id.len() > 256 {
        return Err(bad("has an AccessKeyId that is not visible ASCII"));
    }
    let expiry = OffsetDateTime::parse(expiration, &Rfc3339)
        .map_err(|_| bad("has an Expiration that is not YYYY-MM-DDThh:mm:ssZ"))?;
    Ok(Credentials::new(key_id, secret)
        .with_security_token(token)
        .with_expiry(expiry)
        .with_provider_name(provider))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(sts: StsEndpoint, vars: &[(&str, &str)]) -> Result<String, Error> {
        sts.resolve(&Env::from_vars(vars.iter().copied()))
            .map(|u| u.to_string())
    }

    #[test]
    fn endpoint_order() {
        let none = StsEndpoint::default();
        assert_eq!(
            resolve(none.clone(), &[]).unwrap(),
            "https://sts.aliyuncs.com/"
        );
        assert_eq!(
            resolve(none.clone(), &[(STS_REGION_VAR, "cn-Shanghai")]).unwrap(),
            "https://sts.cn-shanghai.aliyuncs.com/"
        );
        assert_eq!(
            resolve(
                none.clone(),
                &[(STS_REGION_VAR, "cn-shanghai"), (VPC_ENABLED_VAR, "TRUE")]
            )
            .unwrap(),
            "https://sts-vpc.cn-shanghai.aliyuncs.com/"
        );
        // VPC without a region: the global endpoint.
        assert_eq!(
            resolve(none.clone(), &[(VPC_ENABLED_VAR, "true")]).unwrap(),
            "https://sts.aliyuncs.com/"
        );
        // A host is HTTPS; http only when written out; the variable beats the region.
        assert_eq!(
            resolve(
                none.clone(),
                &[
                    (STS_ENDPOINT_VAR, "sts.cn-beijing.aliyuncs.com"),
                    (STS_REGION_VAR, "cn-shanghai")
                ]
            )
            .unwrap(),
            "https://sts.cn-beijing.aliyuncs.com/"
        );
        assert_eq!(
            resolve(none, &[(STS_ENDPOINT_VAR, "http://127.0.0.1:9")]).unwrap(),
            "http://127.0.0.1:9/"
        );
        // The builder's endpoint beats everything; its region beats the variable.
        let explicit = StsEndpoint {
            explicit: Some("sts.example.test".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(explicit, &[(STS_ENDPOINT_VAR, "other.test")]).unwrap(),
            "https://sts.example.test/"
        );
        let region = StsEndpoint {
            region: Some("cn-hangzhou".into()),
            vpc: Some(true),
            ..Default::default()
        };
        assert_eq!(
            resolve(region, &[(STS_REGION_VAR, "us-west-1")]).unwrap(),
            "https://sts-vpc.cn-hangzhou.aliyuncs.com/"
        );
    }

    #[test]
    fn hostile_regions_never_make_a_host() {
        for bad in [
            "evil.com/",
            "a.b",
            "-cn",
            "cn-",
            "x@y",
            "cn hangzhou",
            "",
            &"a".repeat(64),
        ] {
            let sts = StsEndpoint {
                region: Some(bad.to_string()),
                ..Default::default()
            };
            if bad.is_empty() {
                assert!(resolve(sts, &[]).is_ok());
                continue;
            }
            let err = resolve(sts, &[]).unwrap_err();
            assert!(err.to_string().contains("not a region id"), "{bad}: {err}");
        }
        let err = resolve(
            StsEndpoint::default(),
            &[(STS_ENDPOINT_VAR, "ftp://x.test")],
        )
        .unwrap_err();
        assert!(err.to_string().contains(STS_ENDPOINT_VAR), "{err}");
    }

    #[test]
    fn session_names_and_durations() {
        let env = Env::from_vars([(ROLE_SESSION_NAME_VAR, "from-env")]);
        assert_eq!(
            session_name(Some("given.name@x"), &env).unwrap(),
            "given.name@x"
        );
        assert_eq!(session_name(None, &env).unwrap(), "from-env");
        assert!(
            session_name(None, &Env::from_vars::<&str, &str>([]))
                .unwrap()
                .starts_with("aliyun-guard-")
        );
        for bad in ["a", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(session_name(Some(bad), &env).is_err(), "{bad}");
        }
        let err =
            session_name(None, &Env::from_vars([(ROLE_SESSION_NAME_VAR, "x y")])).unwrap_err();
        assert!(err.to_string().contains(ROLE_SESSION_NAME_VAR));
        assert!(validate_duration(899).is_err());
        assert!(validate_duration(43_201).is_err());
        assert_eq!(validate_duration(900).unwrap(), 900);
        assert!(validate_role_arn("acs:ram::123:role/x", "r").is_ok());
        assert!(validate_role_arn("arn:aws:iam::1:role/x", "r").is_err());
    }

    #[test]
    fn parses_sts_credentials_without_echoing_values() {
        let answer = json!({"RequestId": "R1", "Credentials": {
            "AccessKeyId": "STS.NTempKeyId00001", "AccessKeySecret": "SECRET-VALUE",
            "SecurityToken": "TOKEN-VALUE", "Expiration": "2030-01-02T03:04:05Z"}});
        let creds = parse_credentials(&answer, "AssumeRole", "ram_role_arn").unwrap();
        assert_eq!(creds.access_key_id(), "STS.NTempKeyId00001");
        assert_eq!(creds.security_token(), Some("TOKEN-VALUE"));
        assert_eq!(creds.provider_name(), "ram_role_arn");
        assert_eq!(
            creds.expiry().unwrap(),
            time::macros::datetime!(2030-01-02 03:04:05 UTC)
        );
        for broken in [
            json!({"Credentials": {"AccessKeyId": "K", "AccessKeySecret": "SECRET-VALUE",
                "SecurityToken": "TOKEN-VALUE", "Expiration": "tomorrow SECRET-VALUE"}}),
            json!({"Credentials": {"AccessKeyId": "K", "AccessKeySecret": "SECRET-VALUE",
                "Expiration": "2030-01-02T03:04:05Z"}}),
            json!({"Credentials": "SECRET-VALUE"}),
            json!({"RequestId": "SECRET VALUE"}),
        ] {
            let err = parse_credentials(&broken, "AssumeRole", "ram_role_arn").unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains("SECRET") && !shown.contains("TOKEN-VALUE"),
                "{shown}"
            );
            assert!(matches!(
                err,
                Error::Credentials {
                    kind: CredentialsErrorKind::Unavailable,
                    ..
                }
            ));
        }
    }
}
