//! Provider presets: the endpoints, scopes and quirks of well-known identity providers, as data.
//! Each fills a [`ProviderConfig`]; the unit tests pin them to the providers' documented values.

use std::collections::BTreeMap;

use crate::config::{ProviderConfig, RedirectHost, Tool};

/// The routes a provider built from `preset` serves unless the user routes the target elsewhere:
/// git over HTTPS at the forge the preset names (GitHub: `https://github.com`; GitLab: its
/// `base_url`, default `https://gitlab.com`).
#[must_use]
pub fn default_routes(preset: &str, args: &BTreeMap<String, String>) -> Vec<(Tool, String)> {
    match preset {
        "github" => vec![(Tool::Git, "https://github.com".to_owned())],
        "gitlab" => vec![(
            Tool::Git,
            args.get("base_url").filter(|u| !u.is_empty()).map_or_else(
                || "https://gitlab.com".to_owned(),
                |u| u.trim_end_matches('/').to_owned(),
            ),
        )],
        _ => Vec::new(),
    }
}

/// A preset: its name, what it is, and which arguments it needs.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    /// Required arguments (`tenant`, `domain`, `realm`, `base_url`).
    pub required: &'static [&'static str],
    /// Optional arguments.
    pub optional: &'static [&'static str],
    /// What the user must know when registering the client.
    pub note: &'static str,
}

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "google",
        description: "Google (OAuth client of type \"Desktop app\")",
        required: &[],
        optional: &[],
        note: "Desktop-app clients need their client secret: add it with --client-secret-stdin",
    },
    Preset {
        name: "microsoft",
        description: "Microsoft Entra ID (v2.0 endpoints)",
        required: &["tenant"],
        optional: &[],
        note: "register \"Mobile and desktop applications\" with redirect URI http://localhost; tenant: a tenant id, a domain, `organizations` or `common`",
    },
    Preset {
        name: "github",
        description: "GitHub (OAuth app or GitHub App; no discovery)",
        required: &[],
        optional: &[],
        note: "enable the device flow in the app settings for --device; refresh tokens only with expiring user tokens",
    },
    Preset {
        name: "gitlab",
        description: "GitLab.com or a self-managed GitLab",
        required: &[],
        optional: &["base_url"],
        note: "create a non-confidential application with redirect URI http://127.0.0.1/callback",
    },
    Preset {
        name: "okta",
        description: "Okta (custom authorization server)",
        required: &["domain"],
        optional: &["auth_server"],
        note: "create a Native app (PKCE, refresh token grant) with redirect URI http://127.0.0.1/callback",
    },
    Preset {
        name: "auth0",
        description: "Auth0",
        required: &["domain"],
        optional: &["audience"],
        note: "create a Native application; allow the refresh token grant and offline access on the API",
    },
    Preset {
        name: "keycloak",
        description: "Keycloak",
        required: &["base_url", "realm"],
        optional: &[],
        note: "create a public OpenID Connect client with redirect URI http://127.0.0.1/callback",
    },
];

/// Why a preset could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("unknown preset `{0}`; known: {known}", known = PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("preset `{preset}` needs --{}", .arg.replace('_', "-"))]
    Missing { preset: String, arg: &'static str },
    #[error("preset `{preset}` takes no --{}", .arg.replace('_', "-"))]
    Unexpected { preset: String, arg: String },
}

/// Builds the provider `preset` describes, with `args` and the client id.
///
/// # Errors
/// Unknown preset, or a missing or unexpected argument.
#[expect(clippy::too_many_lines, reason = "one arm of data per preset")]
pub fn build(
    preset: &str,
    args: &BTreeMap<String, String>,
    client_id: &str,
) -> Result<ProviderConfig, PresetError> {
    let p = PRESETS
        .iter()
        .find(|p| p.name == preset)
        .ok_or_else(|| PresetError::Unknown(preset.to_owned()))?;
    for r in p.required {
        if args.get(*r).is_none_or(|v| v.trim().is_empty()) {
            return Err(PresetError::Missing {
                preset: preset.to_owned(),
                arg: r,
            });
        }
    }
    for k in args.keys() {
        if !p.required.contains(&k.as_str()) && !p.optional.contains(&k.as_str()) {
            return Err(PresetError::Unexpected {
                preset: preset.to_owned(),
                arg: k.clone(),
            });
        }
    }
    let arg = |k: &str| {
        args.get(k)
            .map(|v| v.trim().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    };
    let scopes = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let base = ProviderConfig {
        client_id: client_id.to_owned(),
        ..ProviderConfig::default()
    };
    Ok(match preset {
        "google" => ProviderConfig {
            issuer: Some("https://accounts.google.com".into()),
            scopes: scopes(&["openid", "email"]),
            // Google grants refresh tokens with access_type=offline, not the offline_access scope.
            auth_params: BTreeMap::from([
                ("access_type".to_owned(), "offline".to_owned()),
                ("prompt".to_owned(), "consent".to_owned()),
            ]),
            token_endpoint_auth_method: Some(crate::config::ClientAuthMethod::ClientSecretPost),
            ..base
        },
        "microsoft" => {
            let t = arg("tenant");
            let root = format!("https://login.microsoftonline.com/{t}");
            // Multi-tenant issuers are templates ({tenantid}) that cannot match exactly, so the
            // endpoints are explicit and only a tenant id gets an issuer.
            let is_id = t.len() == 36 && t.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            ProviderConfig {
                issuer: is_id.then(|| format!("{root}/v2.0")),
                authorization_endpoint: Some(format!("{root}/oauth2/v2.0/authorize")),
                token_endpoint: Some(format!("{root}/oauth2/v2.0/token")),
                device_authorization_endpoint: Some(format!("{root}/oauth2/v2.0/devicecode")),
                jwks_uri: Some(format!("{root}/discovery/v2.0/keys")),
                scopes: scopes(&["openid", "profile", "email", "offline_access"]),
                // Entra matches the host literally; desktop registrations use localhost.
                redirect_host: RedirectHost::Localhost,
                ..base
            }
        }
        "github" => ProviderConfig {
            authorization_endpoint: Some("https://github.com/login/oauth/authorize".into()),
            token_endpoint: Some("https://github.com/login/oauth/access_token".into()),
            device_authorization_endpoint: Some("https://github.com/login/device/code".into()),
            userinfo_endpoint: Some("https://api.github.com/user".into()),
            scopes: scopes(&["read:user"]),
            ..base
        },
        "gitlab" => ProviderConfig {
            issuer: Some(if arg("base_url").is_empty() {
                "https://gitlab.com".into()
            } else {
                arg("base_url")
            }),
            scopes: scopes(&["openid", "profile", "email"]),
            ..base
        },
        "okta" => {
            let server = if arg("auth_server").is_empty() {
                "default".to_owned()
            } else {
                arg("auth_server")
            };
            ProviderConfig {
                issuer: Some(format!("https://{}/oauth2/{server}", arg("domain"))),
                scopes: scopes(&["openid", "profile", "email", "offline_access"]),
                // Okta's /logout requires id_token_hint.
                end_session_id_token_hint: true,
                ..base
            }
        }
        "auth0" => ProviderConfig {
            // Auth0's issuer ends with a slash.
            issuer: Some(format!("https://{}/", arg("domain"))),
            scopes: scopes(&["openid", "profile", "email", "offline_access"]),
            auth_params: if arg("audience").is_empty() {
                BTreeMap::new()
            } else {
                BTreeMap::from([("audience".to_owned(), arg("audience"))])
            },
            ..base
        },
        "keycloak" => ProviderConfig {
            issuer: Some(format!("{}/realms/{}", arg("base_url"), arg("realm"))),
            scopes: scopes(&["openid", "profile", "email", "offline_access"]),
            ..base
        },
        _ => unreachable!("every preset in PRESETS is built"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate_provider;

    fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn forge_presets_route_git_at_their_forge_by_default() {
        assert_eq!(
            default_routes("github", &args(&[])),
            vec![(Tool::Git, "https://github.com".to_owned())]
        );
        assert_eq!(
            default_routes("gitlab", &args(&[])),
            vec![(Tool::Git, "https://gitlab.com".to_owned())]
        );
        assert_eq!(
            default_routes("gitlab", &args(&[("base_url", "https://git.example.org/")])),
            vec![(Tool::Git, "https://git.example.org".to_owned())]
        );
        assert!(default_routes("okta", &args(&[("domain", "x.okta.com")])).is_empty());
    }

    #[test]
    fn every_preset_builds_a_valid_provider() {
        let samples = [
            ("google", args(&[])),
            ("microsoft", args(&[("tenant", "organizations")])),
            ("github", args(&[])),
            ("gitlab", args(&[])),
            ("okta", args(&[("domain", "example.okta.com")])),
            ("auth0", args(&[("domain", "example.us.auth0.com")])),
            (
                "keycloak",
                args(&[("base_url", "https://sso.example.com"), ("realm", "dev")]),
            ),
        ];
        assert_eq!(samples.len(), PRESETS.len());
        for (name, a) in samples {
            let p = build(name, &a, "cid").unwrap();
            validate_provider(name, &p).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }

    #[test]
    fn google_matches_its_documentation() {
        let p = build("google", &args(&[]), "x").unwrap();
        assert_eq!(p.issuer.as_deref(), Some("https://accounts.google.com"));
        assert_eq!(p.auth_params["access_type"], "offline");
        assert!(!p.scopes.contains(&"offline_access".to_owned()));
    }

    #[test]
    fn microsoft_endpoints_per_tenant() {
        let p = build(
            "microsoft",
            &args(&[("tenant", "contoso.onmicrosoft.com")]),
            "x",
        )
        .unwrap();
        assert_eq!(
            p.authorization_endpoint.as_deref(),
            Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize")
        );
        assert_eq!(
            p.token_endpoint.as_deref(),
            Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
        );
        assert_eq!(
            p.device_authorization_endpoint.as_deref(),
            Some(
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
            )
        );
        assert!(p.issuer.is_none(), "a domain is no exact issuer");
        assert_eq!(p.redirect_host, RedirectHost::Localhost);
        let id = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let p = build("microsoft", &args(&[("tenant", id)]), "x").unwrap();
        assert_eq!(
            p.issuer.unwrap(),
            format!("https://login.microsoftonline.com/{id}/v2.0")
        );
    }

    #[test]
    fn github_has_explicit_endpoints() {
        let p = build("github", &args(&[]), "x").unwrap();
        assert_eq!(
            p.token_endpoint.as_deref(),
            Some("https://github.com/login/oauth/access_token")
        );
        assert_eq!(
            p.device_authorization_endpoint.as_deref(),
            Some("https://github.com/login/device/code")
        );
        assert!(p.issuer.is_none());
    }

    #[test]
    fn issuers_of_the_oidc_presets() {
        let iss = |n: &str, a: &[(&str, &str)]| build(n, &args(a), "x").unwrap().issuer.unwrap();
        assert_eq!(iss("gitlab", &[]), "https://gitlab.com");
        assert_eq!(
            iss("gitlab", &[("base_url", "https://git.example.com/")]),
            "https://git.example.com"
        );
        assert_eq!(
            iss("okta", &[("domain", "dev-1.okta.com")]),
            "https://dev-1.okta.com/oauth2/default"
        );
        assert_eq!(
            iss("auth0", &[("domain", "t.eu.auth0.com")]),
            "https://t.eu.auth0.com/"
        );
        assert_eq!(
            iss(
                "keycloak",
                &[("base_url", "https://sso.example.com"), ("realm", "dev")]
            ),
            "https://sso.example.com/realms/dev"
        );
        let a = build(
            "auth0",
            &args(&[("domain", "t.eu.auth0.com"), ("audience", "https://api")]),
            "x",
        )
        .unwrap();
        assert_eq!(a.auth_params["audience"], "https://api");
    }

    #[test]
    fn missing_and_unknown_arguments_are_named() {
        assert!(
            build("okta", &args(&[]), "x")
                .unwrap_err()
                .to_string()
                .contains("--domain")
        );
        assert!(
            build("google", &args(&[("realm", "x")]), "x")
                .unwrap_err()
                .to_string()
                .contains("--realm")
        );
        assert!(
            build("nope", &args(&[]), "x")
                .unwrap_err()
                .to_string()
                .contains("keycloak")
        );
    }
}
