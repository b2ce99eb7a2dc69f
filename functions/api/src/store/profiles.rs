//! Profiles: each user's display name, in the images table beside their account's mark, and
//! the name they gave at sign-up, read once from the user pool to seed it.

use aws_sdk_dynamodb::types::AttributeValue;
use snapglow::table::{TableError, is_condition_failure, n, s};
use std::collections::HashMap;

use super::accounts::pool_error;
use super::{AwsStore, DisplayName, Profile, Profiles, StoreError, UserId};

/// The (pk, sk) of `user_id`'s profile item.
fn profile_pk_sk(user_id: &str) -> (String, String) {
    (format!("ACCOUNT#{user_id}"), "PROFILE".to_owned())
}

fn profile_key(user_id: &str) -> HashMap<String, AttributeValue> {
    let (pk, sk) = profile_pk_sk(user_id);
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A profile item as (user, profile); `None` for an erased one (its name removed, TTL due).
fn read_profile(
    table: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<Option<(String, Profile)>, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    let user_id = text("pk").and_then(|pk| pk.strip_prefix("ACCOUNT#"));
    let name = text("display_name");
    let updated = (item.get("updated_at"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok());
    match (user_id, name, updated) {
        (Some(_), None, None) => Ok(None),
        (Some(user), Some(name), Some(updated_at_ms)) => Ok(Some((
            user.to_owned(),
            Profile {
                display_name: name.clone(),
                updated_at_ms,
            },
        ))),
        _ => Err(
            TableError::corrupt_item(table, format!("profile item {:?}", item.get("pk"))).into(),
        ),
    }
}

impl Profiles for AwsStore {
    /// One strongly consistent GetItem (one read unit): the caller reads their own name just
    /// after changing it.
    async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        let output = (self.dynamodb.get_item())
            .table_name(&self.images_table)
            .set_key(Some(profile_key(user_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        match output.item {
            Some(item) => Ok(read_profile(&self.images_table, &item)?.map(|(_, p)| p)),
            None => Ok(None),
        }
    }

    /// One PutItem (one write unit: a profile is under 1 KB); a seed is conditioned on there
    /// being no item, so it never overwrites a name the user chose since, nor an erased one.
    async fn put_profile(
        &self,
        user_id: &str,
        profile: &Profile,
        only_new: bool,
    ) -> Result<bool, StoreError> {
        let mut item = profile_key(user_id);
        item.insert("display_name".into(), s(&profile.display_name));
        item.insert("updated_at".into(), n(profile.updated_at_ms));
        let put = (self.dynamodb.put_item())
            .table_name(&self.images_table)
            .set_item(Some(item))
            .set_condition_expression(only_new.then(|| "attribute_not_exists(pk)".to_owned()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(TableError::from_sdk(&self.images_table, e).into()),
        }
    }

    /// One UpdateItem: the name removed and the item left to TTL (the API's role has no
    /// DeleteItem on the images table, on purpose: see template.yaml's ApiRole). Repeating it
    /// changes nothing more.
    async fn erase_profile(&self, user_id: &str, expires_at_s: i64) -> Result<(), StoreError> {
        (self.dynamodb.update_item())
            .table_name(&self.images_table)
            .set_key(Some(profile_key(user_id)))
            .update_expression("REMOVE display_name, updated_at SET expires_at = :expires")
            .expression_attribute_values(":expires", n(expires_at_s))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        Ok(())
    }

    /// One BatchGetItem per 100 users (eventually consistent, half a read unit each: a rename
    /// shows on the next read, a moment later at most), the names only.
    async fn display_names(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<UserId, DisplayName>, StoreError> {
        let keys = user_ids.iter().map(|id| profile_pk_sk(id));
        let items = (self.read_images_table(keys, "pk, display_name, updated_at", &[])).await?;
        let mut names = HashMap::new();
        for item in &items {
            if let Some((user, profile)) = read_profile(&self.images_table, item)? {
                names.insert(user, profile.display_name);
            }
        }
        Ok(names)
    }

    /// One AdminGetUser, once per user (until their profile exists): the pool's standard
    /// `name` attribute, which sign-up fills. `None` with another issuer, for a user the pool
    /// does not know, or one who gave no name. Its errors are AdminDeleteUser's (the Cognito
    /// API reference lists the same): throttling and 5xx transient, the rest ours.
    async fn signup_name(&self, username: &str) -> Result<Option<DisplayName>, StoreError> {
        let Some(pool) = &self.pool else {
            return Ok(None);
        };
        let got = (pool.client.admin_get_user())
            .user_pool_id(&pool.id)
            .username(username)
            .send()
            .await;
        match got {
            Ok(user) => Ok((user.user_attributes().iter())
                .find(|a| a.name() == "name")
                .and_then(|a| a.value())
                .map(str::to_owned)),
            Err(error) => pool_error(&pool.id, "AdminGetUser", error).map_or(Ok(None), Err),
        }
    }
}
