//! Edits of `config.toml` that keep what a human wrote: comments, order, the `[agent]` table.

use std::path::Path;

use super::{Config, ConfigError, ProviderConfig};

/// Rewrites the `[providers]` tables of the file at `path` with `edit`, keeping everything else
/// (comments, order, the `[agent]` table) as the human wrote it, and writes atomically.
///
/// # Errors
/// Unreadable or invalid file, or a failed write.
pub fn edit_providers(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::Table) -> Result<(), ConfigError>,
) -> Result<Config, ConfigError> {
    edit_document(path, |doc| {
        let providers = doc
            .entry("providers")
            .or_insert_with(|| {
                let mut t = toml_edit::Table::new();
                t.set_implicit(true);
                toml_edit::Item::Table(t)
            })
            .as_table_mut()
            .ok_or_else(|| ConfigError::ProvidersNotATable { path: path.into() })?;
        edit(providers)
    })
}

/// Rewrites the file at `path` with `edit` on its whole document (comments, order and the
/// untouched tables kept), refusing a result that does not validate, and writes atomically.
///
/// # Errors
/// Unreadable or invalid file (before or after the edit), or a failed write.
pub fn edit_document(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<(), ConfigError>,
) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.into(),
                source,
            });
        }
    };
    // Refuse to edit a file that is already broken: the human must see their error first.
    Config::parse(&text, path)?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|source| ConfigError::Document {
        path: path.into(),
        source,
    })?;
    edit(&mut doc)?;
    let new_text = doc.to_string();
    let config = Config::parse(&new_text, path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ConfigError::Write {
            path: path.into(),
            source,
        })?;
    }
    crate::fsutil::write_atomic(path, new_text.as_bytes(), 0o600).map_err(|source| {
        ConfigError::Write {
            path: path.into(),
            source,
        }
    })?;
    Ok(config)
}

/// The TOML table for one route, as `authctl route add` writes it.
#[must_use]
pub fn route_table(r: &super::RouteConfig) -> toml_edit::Table {
    let text = toml::to_string(r).unwrap_or_default();
    let doc: toml_edit::DocumentMut = text.parse().unwrap_or_default();
    doc.as_table().clone()
}

/// The TOML table for one provider, as `authctl provider add` writes it.
#[must_use]
pub fn provider_table(p: &ProviderConfig) -> toml_edit::Table {
    let text = toml::to_string(p).unwrap_or_default();
    let doc: toml_edit::DocumentMut = text.parse().unwrap_or_default();
    let mut table = doc.as_table().clone();
    table.set_implicit(false);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_keeps_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# my comment\n[agent]\nstore = \"file\"\n").unwrap();
        let p = ProviderConfig {
            issuer: Some("https://idp.example.com".into()),
            client_id: "abc".into(),
            ..ProviderConfig::default()
        };
        let c = edit_providers(&path, |t| {
            t.insert("corp", toml_edit::Item::Table(provider_table(&p)));
            Ok(())
        })
        .unwrap();
        assert_eq!(c.providers["corp"], p);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# my comment"), "{text}");
        assert!(text.contains("[providers.corp]"), "{text}");
    }
}
