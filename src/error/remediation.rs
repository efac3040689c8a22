//! What to do about a compromised AccessKey: ordered steps and links, as data.

use std::fmt;

/// One remediation step.
///
/// ```
/// use aliyun_guard::guard::REMEDIATION;
/// for (n, step) in REMEDIATION.steps.iter().enumerate() {
///     println!("{}. {}: {}", n + 1, step.title, step.detail);
/// }
/// assert!(!REMEDIATION.steps.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// Short imperative title.
    pub title: &'static str,
    /// What to do, concretely.
    pub detail: &'static str,
}

/// A page of Alibaba's documentation or console.
///
/// ```
/// use aliyun_guard::guard::REMEDIATION;
/// assert!(REMEDIATION.links.iter().all(|link| link.url.starts_with("https://")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// What the page is for.
    pub title: &'static str,
    /// Its address.
    pub url: &'static str,
}

/// The guidance a [`crate::guard::CompromisedKey`] carries.
///
/// ```
/// use aliyun_guard::testkit::errors;
/// let leak = errors::compromised_key("LTAI5tExampleKeyIdwxyz", "Ecs", "RunInstances");
/// println!("{}", leak.remediation.summary);
/// assert!(!leak.remediation.steps.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Remediation {
    /// Why the usual way out does not work.
    pub summary: &'static str,
    /// Steps, in order.
    pub steps: &'static [Step],
    /// Pages to read.
    pub links: &'static [Link],
}

/// Said of temporary (STS) credentials whose long-lived parent AccessKey is known: the parent is
/// the key to rotate.
pub const PARENT_KEY_ADVICE: &str = "these temporary credentials were minted from it (by \
     AssumeRole or a CLI profile), so it is exposed as well and can mint more. Rotate or delete \
     that long-lived key as below; the temporary credentials expire by themselves. Meanwhile the \
     guard treats calls with it, or with any credentials minted from it, as calls with a \
     compromised key (refused as its policy says).";

/// Alibaba's guidance for a key under restrictive protection (see `FACTS.md`).
pub const REMEDIATION: Remediation = Remediation {
    summary: "Alibaba Cloud found this AccessKey exposed in public and blocks high-risk operations \
              for it. The protection cannot be lifted: the only way out is to rotate or delete the \
              key. RAM and IMS are blocked for all actions with this key, so it cannot rotate or \
              delete itself: use the console or another administrator identity.",
    steps: &[
        Step {
            title: "Create a replacement AccessKey and deploy it",
            detail: "In the RAM console (or as another administrator), create a new AccessKey for \
                     the same RAM user and roll it out. A RAM user may hold two active keys, so \
                     the rotation needs no downtime.",
        },
        Step {
            title: "Disable, then delete, the exposed key",
            detail: "Once nothing uses the old key, disable it, watch for breakage, then delete it.",
        },
        Step {
            title: "If it cannot be rotated at once, contain it",
            detail: "Attach a Deny policy for high-risk actions to the key's RAM user, or restrict \
                     its source IPs, until the rotation is done.",
        },
        Step {
            title: "Review what the key did",
            detail: "In ActionTrail, filter events by the AccessKey ID; remove unknown RAM users, \
                     AccessKeys, policies, instances and DNS records.",
        },
        Step {
            title: "Or do it from the command line, as an administrator",
            detail: "With the aliyun-guard tool (feature `cli`) and an administrator profile: \
                     `aliyun-guard audit <KEY_ID> --admin-profile ADMIN` (what the key did), \
                     `aliyun-guard contain <KEY_ID> --admin-profile ADMIN --allow-ip CIDR` \
                     (restrict its source IPs), `aliyun-guard rotate <KEY_ID> --admin-profile \
                     ADMIN` (the plan; add `--execute --write-profile NAME --deactivate-old` to \
                     replace it).",
        },
        Step {
            title: "Prefer short-lived credentials",
            detail: "Use STS tokens and RAM roles instead of long-lived AccessKeys, and keep keys \
                     out of code and repositories.",
        },
        Step {
            title: "If the flag seems wrong, contact support",
            detail: "Use the emergency response page of Security Center and click Contact Support.",
        },
    ],
    links: &[
        Link {
            title: "Remediate potentially compromised AccessKey pairs",
            url: "https://www.alibabacloud.com/help/en/ram/user-guide/solution-to-accesskey-leakage",
        },
        Link {
            title: "Restrictive protection and the blocked operations",
            url: "https://www.alibabacloud.com/help/en/ram/use-cases/accesskey-restrictive-protection-description",
        },
        Link {
            title: "Rotate a RAM user's AccessKey",
            url: "https://www.alibabacloud.com/help/doc-detail/152682.htm",
        },
        Link {
            title: "Emergency response (contact support)",
            url: "https://yundun.console.aliyun.com/?p=sc_eg#/ak/overview",
        },
    ],
};

impl fmt::Display for Remediation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary)?;
        writeln!(f, "What to do:")?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {}. {}: {}", i + 1, step.title, step.detail)?;
        }
        writeln!(f, "See:")?;
        for (i, link) in self.links.iter().enumerate() {
            if i + 1 == self.links.len() {
                write!(f, "  - {}: {}", link.title, link.url)?;
            } else {
                writeln!(f, "  - {}: {}", link.title, link.url)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::REMEDIATION;

    #[test]
    fn the_guidance_names_the_command_line() {
        let text = REMEDIATION.to_string();
        for command in [
            "aliyun-guard audit <KEY_ID> --admin-profile",
            "aliyun-guard contain <KEY_ID>",
            "aliyun-guard rotate <KEY_ID> --admin-profile",
        ] {
            assert!(text.contains(command), "{command}");
        }
    }
}
