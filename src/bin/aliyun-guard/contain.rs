//! `contain KEY_ID --allow-ip CIDR...`: restrict a key to source IPs (IMS SetAccessKeyPolicy).

use std::net::IpAddr;

use aliyun_guard::credentials::mask_key_id;
use serde_json::json;

use crate::output;
use crate::{CliError, Ctx, check_key_id};

/// Restricts the key to source IPs while rotation is prepared; `--undo` lifts it.
#[derive(clap::Args, Debug)]
#[command(
    about = "Restrict a key to source IPs while its rotation is prepared (--undo lifts it)",
    long_about = "Sets the AccessKey policy of KEY_ID (IMS SetAccessKeyPolicy, as the \
administrator identity --admin-profile) to a source-IP allow list: calls with the key from other \
addresses are refused, so a leaked copy used elsewhere stops working while your own servers keep \
running. It does not apply to STS tokens the key already minted. `--undo` sets the policy \
inactive again (a policy without an allow list).

Each --allow-ip is an IPv4 or IPv6 address, or a CIDR block (203.0.113.0/24). 0.0.0.0/0 and ::/0 \
restrict nothing and are refused.

Example:
  aliyun-guard contain LTAI5tExampleKeyId --admin-profile admin --allow-ip 203.0.113.10 198.51.100.0/24
  aliyun-guard contain LTAI5tExampleKeyId --admin-profile admin --undo"
)]
pub struct ContainArgs {
    /// The AccessKey ID to restrict.
    key_id: String,
    /// Profile of the administrator identity (IMS permission).
    #[arg(long, value_name = "PROFILE")]
    admin_profile: String,
    /// Source addresses or CIDR blocks the key stays usable from.
    #[arg(long, value_name = "CIDR", num_args = 1.., required_unless_present = "undo")]
    allow_ip: Vec<String>,
    /// Lifts the restriction.
    #[arg(long, conflicts_with = "allow_ip")]
    undo: bool,
}

/// Checks an address or CIDR block; returns it normalised.
pub fn check_cidr(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| {
        format!(
            "{:?} is not an IP address or CIDR block",
            output::clean(text)
        )
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = p.parse().map_err(|_| format!("bad prefix in {text:?}"))?;
            if n > max {
                return Err(format!("prefix /{n} is longer than /{max} in {text:?}"));
            }
            Some(n)
        }
        Some(_) => return Err(format!("{:?} has a bad prefix length", output::clean(text))),
    };
    if prefix == Some(0) {
        return Err(format!("{text} allows every address: it restricts nothing"));
    }
    Ok(match prefix {
        Some(n) => format!("{ip}/{n}"),
        None => ip.to_string(),
    })
}

pub async fn run(ctx: &Ctx, args: ContainArgs) -> Result<u8, CliError> {
    let id = check_key_id(&args.key_id)?;
    let masked = mask_key_id(&id);
    let ips = args
        .allow_ip
        .iter()
        .map(|c| check_cidr(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::usage)?;
    if ips.len() > 100 {
        return Err(CliError::usage("at most 100 --allow-ip entries"));
    }
    let policy = if args.undo {
        json!({"Version": 1, "Status": "Inactive", "Statements": []})
    } else {
        json!({"Version": 1, "Status": "Active",
               "Statements": [{"Type": "ClassicWhiteList", "IPList": ips}]})
    };
    let client = ctx.client(Some(&args.admin_profile))?;
    let request = ctx
        .rpc("Ims", "2019-08-15", "SetAccessKeyPolicy")?
        .param("UserAccessKeyId", &id)
        .param("AccessKeyPolicy", policy.to_string());
    let answer = client.call(&request).await?;
    let json = json!({
        "access_key_id": masked, "undo": args.undo, "allowed_ips": ips,
        "request_id": output::field(&answer, "RequestId"),
    });
    let text = if args.undo {
        format!("{masked}: the source-IP restriction is lifted")
    } else {
        format!(
            "{masked} is now usable only from: {}\nRotate it next: aliyun-guard rotate <KEY_ID> \
             --admin-profile {}",
            ips.join(", "),
            output::clean(&args.admin_profile)
        )
    };
    output::emit(ctx.output(), &json, &text);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::check_cidr;

    #[test]
    fn cidrs_are_checked() {
        assert_eq!(check_cidr("203.0.113.1").unwrap(), "203.0.113.1");
        assert_eq!(check_cidr("198.51.100.0/24").unwrap(), "198.51.100.0/24");
        assert_eq!(check_cidr("2001:db8::/32").unwrap(), "2001:db8::/32");
        for bad in [
            "0.0.0.0/0",
            "1.2.3.4/33",
            "1.2.3/24",
            "x",
            "1.2.3.4/",
            "1.2.3.4/+1",
            "::/0",
        ] {
            assert!(check_cidr(bad).is_err(), "{bad}");
        }
    }
}
