//! `whoami`: STS GetCallerIdentity with the key in use.

use aliyun_guard::Client;
use serde_json::{Value, json};

use crate::output::{self, field};
use crate::{CliError, Ctx};

/// Who the key in use is: account, identity type, user or role name (STS GetCallerIdentity).
#[derive(clap::Args, Debug)]
#[command(
    about = "Who the key in use is: account, identity type, user or role name",
    long_about = "Calls STS GetCallerIdentity with the identity of --profile (or the default chain) \
and prints the account id, the identity type (Account, RAMUser or AssumedRoleUser) and the user or \
role name from the ARN. STS is not blocked for keys under leak protection, so this works with a \
leaked key too. Needs no RAM permission.

Example:
  aliyun-guard whoami --profile leaked
  aliyun-guard whoami --output json"
)]
pub struct WhoamiArgs {}

/// The kind of caller, compared case-insensitively (`RAMUser` and `RamUser` both exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityType {
    Account,
    RamUser,
    AssumedRoleUser,
    Other(String),
}

impl IdentityType {
    fn parse(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "account" => Self::Account,
            "ramuser" => Self::RamUser,
            "assumedroleuser" => Self::AssumedRoleUser,
            _ => Self::Other(output::clean(text)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Account => "Account",
            Self::RamUser => "RAMUser",
            Self::AssumedRoleUser => "AssumedRoleUser",
            Self::Other(s) => s,
        }
    }
}

/// GetCallerIdentity's answer.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: Option<String>,
    pub identity_type: IdentityType,
    pub arn: Option<String>,
    pub principal_id: Option<String>,
    pub user_id: Option<String>,
    pub role_id: Option<String>,
    /// The RAM user name (RAMUser) or role name (AssumedRoleUser), from the ARN.
    pub name: Option<String>,
}

/// The user name of `acs:ram::ACCOUNT:user/NAME`, or the role name of
/// `acs:ram::ACCOUNT:assumed-role/ROLE/SESSION`.
fn name_from_arn(arn: &str, kind: &IdentityType) -> Option<String> {
    let resource = arn.rsplit_once(':').map(|(_, r)| r)?;
    let (prefix, rest) = resource.split_once('/')?;
    let name = match kind {
        IdentityType::AssumedRoleUser => rest.split('/').next()?,
        _ if prefix.eq_ignore_ascii_case("user") => rest.rsplit('/').next()?,
        _ => rest.split('/').next()?,
    };
    (!name.is_empty()).then(|| output::clean(name))
}

pub async fn caller_identity(ctx: &Ctx, client: &Client) -> Result<Identity, CliError> {
    let request = ctx.rpc("Sts", "2015-04-01", "GetCallerIdentity")?;
    let answer = client.call(&request).await?;
    Ok(parse_identity(&answer))
}

fn parse_identity(answer: &Value) -> Identity {
    let identity_type = IdentityType::parse(&field(answer, "IdentityType").unwrap_or_default());
    let arn = field(answer, "Arn");
    let name = arn
        .as_deref()
        .and_then(|a| name_from_arn(a, &identity_type));
    Identity {
        account_id: field(answer, "AccountId"),
        arn,
        principal_id: field(answer, "PrincipalId"),
        user_id: field(answer, "UserId"),
        role_id: field(answer, "RoleId"),
        name: match identity_type {
            IdentityType::Account => None,
            _ => name,
        },
        identity_type,
    }
}

pub async fn run(ctx: &Ctx, _args: WhoamiArgs) -> Result<u8, CliError> {
    let client = ctx.client(ctx.global.profile.as_deref())?;
    let credentials = client.current_credentials().await?;
    let identity = caller_identity(ctx, &client).await?;
    let (name_kind, name) = match identity.identity_type {
        IdentityType::RamUser => ("user", identity.name.clone()),
        IdentityType::AssumedRoleUser => ("role", identity.name.clone()),
        _ => ("name", identity.name.clone()),
    };
    let json = json!({
        "access_key_id": credentials.masked_key_id(),
        "provider": credentials.provider_name(),
        "account_id": identity.account_id,
        "identity_type": identity.identity_type.as_str(),
        "user_name": matches!(identity.identity_type, IdentityType::RamUser).then(|| name.clone()).flatten(),
        "role_name": matches!(identity.identity_type, IdentityType::AssumedRoleUser).then(|| name.clone()).flatten(),
        "arn": identity.arn,
        "principal_id": identity.principal_id,
        "user_id": identity.user_id,
        "role_id": identity.role_id,
    });
    let mut text = format!(
        "key:           {} (from {})\naccount:       {}\nidentity type: {}\n",
        credentials.masked_key_id(),
        credentials.provider_name(),
        identity.account_id.as_deref().unwrap_or("-"),
        identity.identity_type.as_str(),
    );
    if let Some(name) = &name {
        text.push_str(&format!(
            "{name_kind}:{}{name}\n",
            " ".repeat(15 - name_kind.len() - 1)
        ));
    }
    if identity.identity_type == IdentityType::Account {
        text.push_str(
            "note:          this is the account's own (root) key: only the account owner, in the \
             console, can rotate it\n",
        );
    }
    text.push_str(&format!(
        "arn:           {}\n",
        identity.arn.as_deref().unwrap_or("-")
    ));
    output::emit(ctx.output(), &json, &text);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_arn() {
        let id = parse_identity(&json!({"IdentityType": "RamUser",
            "Arn": "acs:ram::1968132000:user/admin"}));
        assert_eq!(id.identity_type, IdentityType::RamUser);
        assert_eq!(id.name.as_deref(), Some("admin"));
        let id = parse_identity(&json!({"IdentityType": "AssumedRoleUser",
            "Arn": "acs:ram::1968132000:assumed-role/deployer/session-1"}));
        assert_eq!(id.name.as_deref(), Some("deployer"));
        let id =
            parse_identity(&json!({"IdentityType": "Account", "Arn": "acs:ram::1968132000:root"}));
        assert_eq!(id.identity_type, IdentityType::Account);
        assert_eq!(id.name, None);
    }
}
