//! The routes of template.yaml's HttpApi, matched on method and path. API Gateway only
//! invokes the function for declared routes; the function still answers anything else
//! with a problem, so that a route added to one and not the other is visible.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    CreateUpload,
    GetImage {
        id: String,
    },
    /// The owner takes the image back.
    DeleteImage {
        id: String,
    },
    Like {
        id: String,
    },
    Unlike {
        id: String,
    },
    /// Who likes an image, by name, paged.
    Likers {
        id: String,
    },
    /// Recently published images of everyone, newest first.
    Feed,
    MyImages,
    MyNotifications,
    ReadNotifications,
    /// The caller's account erased.
    DeleteMe,
    GetProfile,
    PutProfile,
    /// A one-time ticket to open the live WebSocket with.
    LiveTicket,
}

impl Route {
    /// Whether the route changes anything: refused for an erased account.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Route::CreateUpload
                | Route::Like { .. }
                | Route::Unlike { .. }
                | Route::DeleteImage { .. }
                | Route::ReadNotifications
                | Route::PutProfile
                | Route::LiveTicket
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    /// The path exists with other methods.
    MethodNotAllowed {
        allowed: &'static str,
    },
}

pub fn route(method: &str, path: &str) -> Result<Route, NoRoute> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let id = |s: &str| s.to_owned();
    // An image id outside the contract's ids (too long, `#`, control characters) names no
    // image: 404 here, not a key DynamoDB refuses as invalid (a 500).
    if let ["images", image, ..] = segments.as_slice()
        && !snapglow::contracts::valid_id(image)
    {
        return Err(NoRoute::NotFound);
    }
    match (method, segments.as_slice()) {
        ("POST", ["uploads"]) => Ok(Route::CreateUpload),
        (_, ["uploads"]) => Err(NoRoute::MethodNotAllowed { allowed: "POST" }),
        ("GET", ["images", image]) => Ok(Route::GetImage { id: id(image) }),
        ("DELETE", ["images", image]) => Ok(Route::DeleteImage { id: id(image) }),
        (_, ["images", _]) => Err(NoRoute::MethodNotAllowed {
            allowed: "GET, DELETE",
        }),
        ("PUT", ["images", image, "like"]) => Ok(Route::Like { id: id(image) }),
        ("DELETE", ["images", image, "like"]) => Ok(Route::Unlike { id: id(image) }),
        (_, ["images", _, "like"]) => Err(NoRoute::MethodNotAllowed {
            allowed: "PUT, DELETE",
        }),
        ("GET", ["images", image, "likes"]) => Ok(Route::Likers { id: id(image) }),
        (_, ["images", _, "likes"]) => Err(NoRoute::MethodNotAllowed { allowed: "GET" }),
        ("GET", ["feed"]) => Ok(Route::Feed),
        (_, ["feed"]) => Err(NoRoute::MethodNotAllowed { allowed: "GET" }),
        ("DELETE", ["me"]) => Ok(Route::DeleteMe),
        (_, ["me"]) => Err(NoRoute::MethodNotAllowed { allowed: "DELETE" }),
        ("GET", ["me", "images"]) => Ok(Route::MyImages),
        ("POST", ["me", "live-ticket"]) => Ok(Route::LiveTicket),
        (_, ["me", "live-ticket"]) => Err(NoRoute::MethodNotAllowed { allowed: "POST" }),
        ("GET", ["me", "profile"]) => Ok(Route::GetProfile),
        ("PUT", ["me", "profile"]) => Ok(Route::PutProfile),
        (_, ["me", "profile"]) => Err(NoRoute::MethodNotAllowed {
            allowed: "GET, PUT",
        }),
        ("GET", ["me", "notifications"]) => Ok(Route::MyNotifications),
        ("POST", ["me", "notifications", "read"]) => Ok(Route::ReadNotifications),
        (_, ["me", "images" | "notifications"]) => {
            Err(NoRoute::MethodNotAllowed { allowed: "GET" })
        }
        (_, ["me", "notifications", "read"]) => Err(NoRoute::MethodNotAllowed { allowed: "POST" }),
        _ => Err(NoRoute::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_route_is_reached_and_others_are_told_apart() {
        assert_eq!(route("POST", "/uploads"), Ok(Route::CreateUpload));
        assert_eq!(
            route("GET", "/images/abc"),
            Ok(Route::GetImage { id: "abc".into() })
        );
        assert_eq!(
            route("DELETE", "/images/abc"),
            Ok(Route::DeleteImage { id: "abc".into() })
        );
        assert_eq!(
            route("POST", "/images/abc"),
            Err(NoRoute::MethodNotAllowed {
                allowed: "GET, DELETE"
            })
        );
        assert_eq!(
            route("PUT", "/images/abc/like"),
            Ok(Route::Like { id: "abc".into() })
        );
        assert_eq!(
            route("DELETE", "/images/abc/like"),
            Ok(Route::Unlike { id: "abc".into() })
        );
        assert_eq!(route("GET", "/me/images"), Ok(Route::MyImages));
        assert_eq!(
            route("GET", "/images/abc/likes"),
            Ok(Route::Likers { id: "abc".into() })
        );
        assert_eq!(route("GET", "/me/profile"), Ok(Route::GetProfile));
        assert_eq!(route("POST", "/me/live-ticket"), Ok(Route::LiveTicket));
        assert_eq!(route("PUT", "/me/profile"), Ok(Route::PutProfile));
        assert_eq!(
            route("DELETE", "/me/profile"),
            Err(NoRoute::MethodNotAllowed {
                allowed: "GET, PUT"
            })
        );
        assert_eq!(route("DELETE", "/me"), Ok(Route::DeleteMe));
        assert_eq!(
            route("GET", "/me"),
            Err(NoRoute::MethodNotAllowed { allowed: "DELETE" })
        );
        let long = format!("/images/{}", "x".repeat(3000));
        assert_eq!(route("GET", &long), Err(NoRoute::NotFound));
        assert_eq!(route("PUT", "/images/a#b/like"), Err(NoRoute::NotFound));
        assert_eq!(route("GET", "/feed"), Ok(Route::Feed));
        assert_eq!(
            route("POST", "/feed"),
            Err(NoRoute::MethodNotAllowed { allowed: "GET" })
        );
        assert_eq!(
            route("GET", "/me/notifications"),
            Ok(Route::MyNotifications)
        );
        assert_eq!(
            route("POST", "/me/notifications/read"),
            Ok(Route::ReadNotifications)
        );
        assert_eq!(
            route("GET", "/uploads"),
            Err(NoRoute::MethodNotAllowed { allowed: "POST" })
        );
        assert_eq!(route("GET", "/nowhere"), Err(NoRoute::NotFound));
    }
}
