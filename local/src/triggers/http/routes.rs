//! Which route a request reaches: method and path against the routes' templates
//! (`/images/{id}/like`), with the path parameters.

use std::collections::BTreeMap;

use crate::template::model::JwtAuthorizer;

/// One route: `PUT /images/{id}/like` → the function that serves it.
pub(super) struct RouteEntry {
    pub method: String,
    pub path: String,
    pub function: usize,
    /// The JWT authorizer's settings, `None` for `Authorizer: NONE`.
    pub jwt: Option<JwtAuthorizer>,
}

/// The route matching `method` and `path`, with its path parameters.
pub(super) fn find<'a>(
    routes: &'a [RouteEntry],
    method: &str,
    path: &str,
) -> Option<(&'a RouteEntry, BTreeMap<String, String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    routes.iter().find_map(|route| {
        if route.method != method && route.method != "ANY" {
            return None;
        }
        let pattern: Vec<&str> = route.path.trim_matches('/').split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut parameters = BTreeMap::new();
        for (p, s) in pattern.iter().zip(&segments) {
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !s.is_empty() => {
                    parameters.insert(name.to_owned(), (*s).to_owned());
                }
                Some(_) => return None,
                None if p == s => {}
                None => return None,
            }
        }
        Some((route, parameters))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> RouteEntry {
        RouteEntry {
            method: method.into(),
            path: path.into(),
            function: 0,
            jwt: None,
        }
    }

    #[test]
    fn routes_match_on_method_and_path_with_their_parameters() {
        let routes = [
            route("PUT", "/images/{id}/like"),
            route("GET", "/images/{id}"),
            route("POST", "/uploads"),
        ];
        let (found, parameters) = find(&routes, "PUT", "/images/abc/like").unwrap();
        assert_eq!(
            (found.path.as_str(), parameters["id"].as_str()),
            ("/images/{id}/like", "abc")
        );
        assert!(find(&routes, "DELETE", "/images/abc/like").is_none());
        assert!(find(&routes, "GET", "/images//like").is_none());
        assert!(find(&routes, "POST", "/uploads").is_some());
    }
}
