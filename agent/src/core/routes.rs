//! The `[[route]]` tables of the configuration: resolving a tool's target to an account, and the
//! edits of `authctl route add/remove` (which keep the file's comments).

use super::{Core, CoreError};
use crate::config::{self, ConfigError, RouteConfig, Tool, routes};

impl Core {
    /// The route that serves `target` for `tool`.
    ///
    /// # Errors
    /// No route covers the target (the message names the command that adds one).
    pub fn resolve_route(&self, tool: Tool, target: &str) -> Result<RouteConfig, CoreError> {
        routes::resolve(&self.config().routes, tool, target)
            .cloned()
            .ok_or_else(|| CoreError::NoRoute {
                tool: tool.name(),
                target: target.to_owned(),
            })
    }

    /// Adds (or, with `replace`, replaces) a route; its target is stored in canonical form.
    ///
    /// # Errors
    /// An invalid route, one that exists (without `replace`), or the file failed.
    pub fn add_route(&self, mut route: RouteConfig, replace: bool) -> Result<(), CoreError> {
        route
            .validate()
            .map_err(|(key, problem)| ConfigError::Route { key, problem })?;
        route.target = routes::normalize_target(route.tool, &route.target).map_err(|problem| {
            ConfigError::Route {
                key: "target",
                problem,
            }
        })?;
        let config = config::edit_document(&self.paths.config_file, |doc| {
            let array = route_array(doc, &self.paths.config_file)?;
            if let Some(i) = position(array, &route) {
                if !replace {
                    return Err(ConfigError::RouteExists {
                        tool: route.tool.name(),
                        target: route.target.clone(),
                    });
                }
                array.remove(i);
            }
            array.push(config::route_table(&route));
            Ok(())
        })?;
        self.set_config(config);
        tracing::info!(tool = route.tool.name(), target = %route.target, account = %route.account, "route added");
        Ok(())
    }

    /// Removes the route of `tool` for exactly `target` (canonical form).
    ///
    /// # Errors
    /// No such route, or the file failed.
    pub fn remove_route(&self, tool: Tool, target: &str) -> Result<(), CoreError> {
        let target =
            routes::normalize_target(tool, target).map_err(|problem| ConfigError::Route {
                key: "target",
                problem,
            })?;
        let missing = || ConfigError::NoSuchRoute {
            tool: tool.name(),
            target: target.clone(),
        };
        let config = config::edit_document(&self.paths.config_file, |doc| {
            let probe = RouteConfig {
                tool,
                target: target.clone(),
                account: String::new(),
                scopes: Vec::new(),
                resource: None,
                username: None,
            };
            let array = route_array(doc, &self.paths.config_file)?;
            let i = position(array, &probe).ok_or_else(missing)?;
            array.remove(i);
            if array.is_empty() {
                doc.remove("route");
            }
            Ok(())
        })?;
        self.set_config(config);
        tracing::info!(tool = tool.name(), %target, "route removed");
        Ok(())
    }
}

/// The document's `[[route]]` array, created empty when missing.
fn route_array<'a>(
    doc: &'a mut toml_edit::DocumentMut,
    path: &std::path::Path,
) -> Result<&'a mut toml_edit::ArrayOfTables, ConfigError> {
    doc.entry("route")
        .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| ConfigError::RoutesNotAnArray { path: path.into() })
}

/// Where the route of the same tool and (canonical) target is in the array.
fn position(array: &toml_edit::ArrayOfTables, route: &RouteConfig) -> Option<usize> {
    array.iter().position(|t| {
        let field = |k: &str| t.get(k).and_then(|v| v.as_str());
        field("tool") == Some(route.tool.name())
            && field("target")
                .and_then(|s| routes::normalize_target(route.tool, s).ok())
                .is_some_and(|s| s == route.target)
    })
}
