//! Accounts: the mark an erased account leaves in the images table, and its user's deletion
//! from the template's user pool.

use snapglow::table::{TableError, n, s};

use super::{Accounts, AwsStore, StoreError};

/// The user pool the API deletes an erased account's user from. `None` in the store when
/// another issuer (`JwtIssuer`) owns the accounts: there is nothing of theirs to delete here.
pub struct UserPool {
    pub client: aws_sdk_cognitoidentityprovider::Client,
    pub id: String,
}

fn mark_key(user_id: &str) -> [(&'static str, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [("pk", s(format!("ACCOUNT#{user_id}"))), ("sk", s("ERASED"))]
}

impl Accounts for AwsStore {
    /// One strongly consistent GetItem (one read unit), on write routes only: a write sent
    /// just after the mark must see it.
    async fn erased(&self, user_id: &str) -> Result<bool, StoreError> {
        let [(pk, pk_value), (sk, sk_value)] = mark_key(user_id);
        let output = (self.dynamodb.get_item())
            .table_name(&self.images_table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        Ok(output.item.is_some())
    }

    /// One UpdateItem, answering the stored time: a second keeps the first mark's time.
    async fn mark_erased(&self, user_id: &str, at_ms: i64) -> Result<i64, StoreError> {
        let [(pk, pk_value), (sk, sk_value)] = mark_key(user_id);
        let output = (self.dynamodb.update_item())
            .table_name(&self.images_table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .update_expression("SET erased_at = if_not_exists(erased_at, :at)")
            .expression_attribute_values(":at", n(at_ms))
            // The whole item: small, and its `erased_at` is there whether this call set it or not.
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        let stored = (output.attributes.as_ref())
            .and_then(|a| a.get("erased_at"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok());
        stored.ok_or_else(|| {
            TableError::corrupt_item(&self.images_table, format!("the erased mark of {user_id}"))
                .into()
        })
    }

    /// One UpdateItem.
    async fn settle_mark(&self, user_id: &str, expires_at_s: i64) -> Result<(), StoreError> {
        let [(pk, pk_value), (sk, sk_value)] = mark_key(user_id);
        (self.dynamodb.update_item())
            .table_name(&self.images_table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .update_expression("SET expires_at = :expires")
            .expression_attribute_values(":expires", n(expires_at_s))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        Ok(())
    }

    /// One AdminDeleteUser. Its errors, from the Cognito API reference: `UserNotFoundException`
    /// is the user gone already (a repeated erasure): done. `TooManyRequestsException`,
    /// `InternalErrorException`, 5xx and timeouts (after the SDK's own retries) are transient:
    /// the client's next DELETE /me finishes it. `NotAuthorizedException`, an AccessDenied,
    /// `ResourceNotFoundException` (no such pool) and `InvalidParameterException` say the
    /// template or the code is wrong: a 500.
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        let Some(pool) = &self.pool else {
            return Ok(false);
        };
        let deleted = (pool.client.admin_delete_user())
            .user_pool_id(&pool.id)
            .username(username)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(true),
            Err(error) => pool_error(&pool.id, "AdminDeleteUser", error).map_or(Ok(true), Err),
        }
    }
}

/// A failed user pool call as the store's error, sorted by [`pool_failure`]; `None` when the
/// user is not in the pool (`UserNotFoundException`), which each caller reads its own way.
pub(super) fn pool_error<E>(
    pool: &str,
    action: &'static str,
    error: aws_sdk_cognitoidentityprovider::error::SdkError<E>,
) -> Option<StoreError>
where
    E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
    let unanswered = matches!(
        error,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    let status = error.raw_response().map(|r| r.status().as_u16());
    let transient = pool_failure(error.code(), status, unanswered)?;
    Some(StoreError::Pool {
        pool: pool.to_owned(),
        action,
        source: Box::new(error),
        transient,
    })
}

/// How a failed AdminDeleteUser reads: `None` when the user is gone already (done), else
/// whether it is transient (`unanswered`: a timeout or a connection that gave no answer).
pub fn pool_failure(code: Option<&str>, status: Option<u16>, unanswered: bool) -> Option<bool> {
    match code {
        Some("UserNotFoundException") => None,
        Some("TooManyRequestsException" | "InternalErrorException") => Some(true),
        _ => Some(unanswered || status.is_some_and(|s| s >= 500)),
    }
}

#[cfg(test)]
mod tests {
    use super::pool_failure;

    #[test]
    fn a_user_gone_already_is_done_throttling_and_outages_come_back_and_refusals_are_ours() {
        assert_eq!(
            pool_failure(Some("UserNotFoundException"), Some(400), false),
            None
        );
        for busy in ["TooManyRequestsException", "InternalErrorException"] {
            assert_eq!(
                pool_failure(Some(busy), Some(400), false),
                Some(true),
                "{busy}"
            );
        }
        assert_eq!(pool_failure(None, Some(503), false), Some(true));
        assert_eq!(pool_failure(None, None, true), Some(true));
        for ours in [
            "NotAuthorizedException",
            "AccessDeniedException",
            "ResourceNotFoundException",
            "InvalidParameterException",
        ] {
            assert_eq!(
                pool_failure(Some(ours), Some(400), false),
                Some(false),
                "{ours}"
            );
        }
    }
}
