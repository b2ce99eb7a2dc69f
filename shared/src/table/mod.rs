//! What can go wrong with a function's own DynamoDB table, and how an SDK error is sorted into
//! it. like-counter and notifier report their tables' failures with these same errors.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem};
use std::collections::HashMap;
use std::error::Error;

mod erase;
mod item;

pub use erase::{Deletes, MAX_BATCH_WRITE_ITEMS, Selection, delete_all};
pub use item::{Item, image_of_pk, image_pk, is_condition_failure, n, s};

use crate::batch::Deadline;
use crate::retry::{Attempt, is_transient, pause, with_backoff};

/// BatchGetItem takes at most 100 keys.
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// Attempts per request, on top of the SDK's own, within the invocation's deadline.
const ATTEMPTS: u32 = 6;

/// The error a table operation failed with: an SDK error, or whatever a test double reports.
pub type Cause = Box<dyn Error + Send + Sync + 'static>;

/// HAZARD: the messages repeat their cause's whole chain, since log lines and quarantine entries
/// print an error alone, never its sources; `source` still hands the cause to code that inspects it.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Throttling, 5xx, timeouts, a missing table: the work is redelivered.
    #[error(
        "DynamoDB table {table} is unavailable or throttling: {}; the records are redelivered (throttling clears; if the table does not exist, the function's table variable in template.yaml names the wrong one)",
        chain(.source)
    )]
    Transient {
        table: String,
        #[source]
        source: Cause,
    },
    /// DynamoDB refused the request itself: retrying the same request cannot help.
    #[error(
        "DynamoDB rejected a request to {table}: {}; retrying cannot help: the request is wrong (a bug in the function, or a table whose keys differ from template.yaml), not the record",
        chain(.source)
    )]
    Rejected {
        table: String,
        #[source]
        source: Cause,
    },
    /// One partition key's items (an inbox) reached the 10 GB DynamoDB allows an item
    /// collection of a table with a local secondary index: the table's state, not the record,
    /// so no retry helps until someone trims that key's items.
    #[error(
        "DynamoDB table {table} refused a write because one partition key's items (for the notifications table, one user's inbox) reached the 10 GB limit of a table with a local secondary index: {}; delete that key's oldest items (expired ones first), then redrive the quarantined records",
        chain(.source)
    )]
    CollectionFull {
        table: String,
        #[source]
        source: Cause,
    },
    /// The function may not make the request (its role lacks the grant, or its credentials are
    /// refused): no record is at fault, and retrying inside the invocation cannot help.
    #[error(
        "DynamoDB refused {table} to this function: {}; grant the action on the table to the function's role in template.yaml (the records are redelivered until then)",
        chain(.source)
    )]
    Denied {
        table: String,
        #[source]
        source: Cause,
    },
    /// A stored item the function cannot read.
    #[error(
        "an item in DynamoDB table {table} is malformed: {detail}; restore the item from its source of truth (for a like state, the images table's LIKE# item of that user and image), never delete it: a deleted state lets a redriven or replayed event count again. The record is quarantined; redrive it once the item is restored"
    )]
    CorruptItem { table: String, detail: String },
}

fn chain(source: &Cause) -> DisplayErrorContext<&(dyn Error + Send + Sync + 'static)> {
    DisplayErrorContext(source.as_ref())
}

impl TableError {
    pub fn transient(table: impl Into<String>, cause: impl Into<Cause>) -> Self {
        TableError::Transient {
            table: table.into(),
            source: cause.into(),
        }
    }

    pub fn rejected(table: impl Into<String>, cause: impl Into<Cause>) -> Self {
        TableError::Rejected {
            table: table.into(),
            source: cause.into(),
        }
    }

    pub fn denied(table: impl Into<String>, cause: impl Into<Cause>) -> Self {
        TableError::Denied {
            table: table.into(),
            source: cause.into(),
        }
    }

    /// Whether the error belongs to the data of the request (a value DynamoDB refuses, an item
    /// too large, a stored item the function cannot read) rather than to the table or the
    /// function: the request without that data would succeed.
    pub fn is_about_data(&self) -> bool {
        matches!(
            self,
            TableError::Rejected { .. }
                | TableError::CorruptItem { .. }
                | TableError::CollectionFull { .. }
        )
    }

    pub fn corrupt_item(table: impl Into<String>, detail: impl Into<String>) -> Self {
        TableError::CorruptItem {
            table: table.into(),
            detail: detail.into(),
        }
    }

    /// Sorts an SDK error from a request to `table`: worth another attempt now (throttling,
    /// 5xx, timeouts), transient but not worth retrying inside this invocation (a missing table
    /// is infrastructure, not bad data: the records wait on their source), or rejected.
    pub fn classify<E>(table: &str, error: SdkError<E, HttpResponse>) -> Attempt<TableError>
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        let code = error.as_service_error().and_then(|e| e.code());
        if is_transient(&error) {
            Attempt::Retry(Self::transient(table, error))
        } else if code == Some("ResourceNotFoundException") {
            Attempt::GiveUp(Self::transient(table, error))
        } else if code == Some("ItemCollectionSizeLimitExceededException") {
            Attempt::GiveUp(TableError::CollectionFull {
                table: table.to_owned(),
                source: error.into(),
            })
        } else if refuses_the_caller(code, error.raw_response().map(|r| r.status().as_u16())) {
            // DynamoDB answers a refused permission with a JSON 400 AccessDeniedException; the
            // local emulator's IAM layer answers 403 with an XML body whose code the SDK cannot
            // read. Any 403 is a refusal of the caller, never of the data.
            Attempt::GiveUp(Self::denied(table, error))
        } else {
            Attempt::GiveUp(Self::rejected(table, error))
        }
    }

    /// A failed transaction that is no condition failure and not worth another attempt: a full
    /// item collection, or as [`TableError::classify`] sorts it.
    pub fn of_transaction(
        table: &str,
        error: SdkError<TransactWriteItemsError, HttpResponse>,
    ) -> TableError {
        match Cancellation::of_error(&error) {
            Some(Cancellation::CollectionFull) => TableError::CollectionFull {
                table: table.to_owned(),
                source: error.into(),
            },
            Some(Cancellation::Refused) => TableError::rejected(table, error),
            _ => Self::from_sdk(table, error),
        }
    }

    /// [`TableError::classify`] for a request that is not retried here.
    pub fn from_sdk<E>(table: &str, error: SdkError<E, HttpResponse>) -> TableError
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        Self::classify(table, error).into_error()
    }
}

/// Whether DynamoDB's answer refuses the caller (its grants or its credentials), never the
/// data: a 403, or one of the codes DynamoDB answers a refused permission or credential with.
pub fn refuses_the_caller(code: Option<&str>, status: Option<u16>) -> bool {
    status == Some(403)
        || matches!(
            code,
            Some(
                "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "MissingAuthenticationTokenException"
                    | "IncompleteSignatureException"
                    | "ExpiredTokenException"
                    | "RequestExpired"
                    | "NotAuthorized"
            )
        )
}

/// Every item of `keys` there is in `table`, read strongly consistent, in requests of 100 keys
/// (`projection`: the attributes to read; the key attributes must be among them). Keys
/// DynamoDB leaves unprocessed (throttled, while the call "succeeds") are asked again with a
/// growing pause, never past the deadline. `on_request` is called once per request sent.
pub async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
    deadline: &Deadline,
    on_request: impl Fn(),
) -> Result<Vec<Item>, TableError> {
    let mut items = Vec::new();
    for chunk in keys.chunks(MAX_BATCH_GET_KEYS) {
        let request = KeysAndAttributes::builder()
            .consistent_read(true)
            .set_projection_expression(projection.map(str::to_owned))
            .set_keys(Some(chunk.to_vec()))
            .build()
            .expect("keys are set");
        let mut read = batch_get_tables(
            client,
            HashMap::from([(table.to_owned(), request)]),
            deadline,
            &on_request,
        )
        .await?;
        items.extend(read.remove(table).unwrap_or_default());
    }
    Ok(items)
}

/// One BatchGetItem over several tables (at most 100 keys in all), by table name, with the
/// `UnprocessedKeys` it leaves asked again after a growing pause, never past the deadline.
/// Errors name the first table of the request.
pub async fn batch_get_tables(
    client: &aws_sdk_dynamodb::Client,
    request: HashMap<String, KeysAndAttributes>,
    deadline: &Deadline,
    on_request: impl Fn(),
) -> Result<HashMap<String, Vec<Item>>, TableError> {
    let table = request.keys().min().cloned().unwrap_or_default();
    let mut items: HashMap<String, Vec<Item>> = HashMap::new();
    let mut pending = request;
    let mut rounds = 0u32;
    while !pending.is_empty() {
        let asked = std::mem::take(&mut pending);
        let output = with_backoff(deadline, ATTEMPTS, |_| {
            let request = client
                .batch_get_item()
                .set_request_items(Some(asked.clone()));
            on_request();
            let table = &table;
            async move {
                request
                    .send()
                    .await
                    .map_err(|e| TableError::classify(table, e))
            }
        })
        .await?;
        for (name, read) in output.responses.unwrap_or_default() {
            items.entry(name).or_default().extend(read);
        }
        pending = output.unprocessed_keys.unwrap_or_default();
        pending.retain(|_, keys| !keys.keys.is_empty());
        if !pending.is_empty() {
            // Jittered, so that readers throttled together do not ask again together.
            rounds += 1;
            if !pause(deadline, rounds).await {
                return Err(TableError::transient(
                    table,
                    "BatchGetItem kept answering UnprocessedKeys (throttled) until the deadline",
                ));
            }
        }
    }
    Ok(items)
}

/// What a conditional transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Committed,
    /// A condition failed: some state changed since it was read (a concurrent or zombie
    /// invocation, or an SDK retry of a write that had in fact succeeded). Read again and
    /// re-plan.
    StateChanged,
}

/// How a canceled TransactWriteItems reads, from its cancellation reasons (one per action, in
/// request order, `None` for an action that had no error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancellation {
    /// A condition failed: state changed since it was read.
    ConditionFailed,
    /// Nothing wrong with the request: DynamoDB was scaling (`ThrottlingError`,
    /// `ProvisionedThroughputExceeded`, `RequestLimitExceeded`) or another transaction held an
    /// item (`TransactionConflict`). The same request succeeds later.
    Capacity,
    /// Canceled without reasons. The API reference documents `CancellationReasons` as optional,
    /// so its absence says nothing about the data: treat it as [`Cancellation::Capacity`],
    /// never as a refusal (quarantining on it would lose healthy records).
    Unexplained,
    /// An action DynamoDB will never accept (`ValidationError`): the request, not the moment,
    /// is wrong.
    Refused,
    /// An action that would grow an item collection past 10 GB
    /// (`ItemCollectionSizeLimitExceeded`): see [`TableError::CollectionFull`].
    CollectionFull,
}

impl Cancellation {
    /// Whether the same transaction may succeed if sent again after a pause.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Cancellation::Capacity | Cancellation::Unexplained)
    }

    /// Reads the codes of a cancellation's reasons (`None` for a reason without a code).
    pub fn of_codes<'a>(codes: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let failed: Vec<&str> = codes
            .into_iter()
            .map(|code| code.unwrap_or("None"))
            .filter(|code| *code != "None")
            .collect();
        if failed.is_empty() {
            Cancellation::Unexplained
        } else if failed.contains(&"ConditionalCheckFailed") {
            Cancellation::ConditionFailed
        } else if failed.contains(&"ItemCollectionSizeLimitExceeded") {
            Cancellation::CollectionFull
        } else if failed.iter().all(|code| is_capacity_code(code)) {
            Cancellation::Capacity
        } else {
            Cancellation::Refused
        }
    }

    /// The cancellation a TransactWriteItems error carries, if it is one.
    pub fn of_error(error: &SdkError<TransactWriteItemsError, HttpResponse>) -> Option<Self> {
        match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => Some(
                Self::of_codes(canceled.cancellation_reasons().iter().map(|r| r.code())),
            ),
            _ => None,
        }
    }
}

/// Cancellation codes that name the moment, not the request.
pub fn is_capacity_code(code: &str) -> bool {
    matches!(
        code,
        "TransactionConflict"
            | "ThrottlingError"
            | "ProvisionedThroughputExceeded"
            | "RequestLimitExceeded"
    )
}

/// Sends one single-item request (`send` makes and sends a fresh one per attempt) until it
/// succeeds (`Some`), its condition fails (`None`: the state is not what the write expects), or
/// DynamoDB refuses it. While DynamoDB answers it busy, it is sent again after a growing pause
/// within the deadline: throttling past the SDK's own attempts, 5xx, and
/// `TransactionConflictException`, which the SDK does not retry and which a single-item write
/// meets whenever a transaction holds its item.
pub async fn write_item<T, E, F, Fut>(
    table: &str,
    deadline: &Deadline,
    mut send: F,
) -> Result<Option<T>, TableError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    with_backoff(deadline, ATTEMPTS, |_| {
        let sent = send();
        async move {
            match sent.await {
                Ok(output) => Ok(Some(output)),
                Err(e) if is_condition_failure(&e) => Ok(None),
                Err(e) => Err(TableError::classify(table, e)),
            }
        }
    })
    .await
}

/// Commits `actions` as one TransactWriteItems on `table`, retrying conflicts and throttling
/// (whole-request, or as cancellation reasons) within the deadline. `on_attempt` is called
/// once per request sent.
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    actions: &[TransactWriteItem],
    deadline: &Deadline,
    on_attempt: impl Fn(),
) -> Result<Applied, TableError> {
    with_backoff(deadline, ATTEMPTS, |_| {
        let request = client
            .transact_write_items()
            .set_transact_items(Some(actions.to_vec()));
        on_attempt();
        async move {
            let Err(error) = request.send().await else {
                return Ok(Applied::Committed);
            };
            match Cancellation::of_error(&error) {
                Some(Cancellation::ConditionFailed) => Ok(Applied::StateChanged),
                Some(cancellation) if cancellation.is_retryable() => {
                    Err(Attempt::Retry(TableError::transient(table, error)))
                }
                Some(Cancellation::CollectionFull) => {
                    Err(Attempt::GiveUp(TableError::of_transaction(table, error)))
                }
                // Throttling past the SDK's attempts, 5xx, timeouts: sent again after a pause.
                _ => Err(TableError::classify(table, error)),
            }
        }
    })
    .await
}

/// Splits `transactions` into the first wave, whose transactions share no item named by
/// `shared` and may run at once, and the rest, to run after it.
///
/// HAZARD: two transactions writing one item at once collide on DynamoDB (TransactionConflict:
/// one is canceled and retried, a wasted request) and lose an update on the local emulator.
pub fn first_wave<T, K: Ord>(
    transactions: Vec<T>,
    shared: impl Fn(&T) -> Vec<K>,
) -> (Vec<T>, Vec<T>) {
    let mut taken = std::collections::BTreeSet::new();
    let (mut wave, mut rest) = (Vec::new(), Vec::new());
    for transaction in transactions {
        let keys = shared(&transaction);
        if keys.iter().any(|k| taken.contains(k)) {
            rest.push(transaction);
        } else {
            taken.extend(keys);
            wave.push(transaction);
        }
    }
    (wave, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    fn answered(status: u16, code: &str) -> SdkError<GetItemError, HttpResponse> {
        let error = GetItemError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("Requested resource not found")
                .build(),
        );
        SdkError::service_error(
            error,
            HttpResponse::new(status.try_into().unwrap(), "".into()),
        )
    }

    #[test]
    fn a_missing_table_is_transient_but_not_retried_and_the_message_names_table_and_cause() {
        // WHEN DynamoDB answers that the table does not exist
        let classified = TableError::classify("likes", answered(400, "ResourceNotFoundException"));
        // THEN the records wait on their source instead of being retried or quarantined now
        let Attempt::GiveUp(error) = classified else {
            panic!("a missing table must not be retried inside the invocation");
        };
        assert!(matches!(error, TableError::Transient { .. }), "{error:?}");
        // AND the message names the table and says what DynamoDB said; the cause is kept
        let message = error.to_string();
        assert!(message.contains("DynamoDB table likes"), "{message}");
        assert!(
            message.contains("Requested resource not found"),
            "{message}"
        );
        assert!(
            error.source().is_some(),
            "the SDK error is kept as the cause"
        );
    }

    #[test]
    fn throttling_and_server_errors_are_retried_and_other_refusals_are_rejected() {
        assert!(matches!(
            TableError::classify("likes", answered(400, "ThrottlingException")),
            Attempt::Retry(TableError::Transient { .. })
        ));
        assert!(matches!(
            TableError::classify("likes", answered(503, "ServiceUnavailable")),
            Attempt::Retry(TableError::Transient { .. })
        ));
        assert!(matches!(
            TableError::classify("likes", answered(400, "ValidationException")),
            Attempt::GiveUp(TableError::Rejected { .. })
        ));
    }

    #[test]
    fn a_cancellation_is_retried_unless_a_condition_failed_or_an_action_is_refused() {
        let read = |codes: &[Option<&str>]| Cancellation::of_codes(codes.iter().copied());
        assert_eq!(
            read(&[Some("None"), Some("ThrottlingError"), None]),
            Cancellation::Capacity
        );
        assert_eq!(
            read(&[
                Some("TransactionConflict"),
                Some("ProvisionedThroughputExceeded")
            ]),
            Cancellation::Capacity
        );
        // AND a cancellation without reasons (documented as optional) is never a refusal
        assert_eq!(read(&[]), Cancellation::Unexplained);
        assert!(read(&[]).is_retryable());
        // AND a failed condition wins over throttling: the state is read again anyway
        assert_eq!(
            read(&[Some("ThrottlingError"), Some("ConditionalCheckFailed")]),
            Cancellation::ConditionFailed
        );
        assert_eq!(
            read(&[Some("ValidationError"), Some("ThrottlingError")]),
            Cancellation::Refused
        );
        assert!(!Cancellation::Refused.is_retryable());
    }

    #[test]
    fn transactions_sharing_an_item_run_in_separate_waves() {
        let transactions = vec![
            ("a", vec![1]),
            ("b", vec![1]),
            ("c", vec![2]),
            ("d", vec![]),
        ];
        let (wave, rest) = first_wave(transactions, |t| t.1.clone());
        fn names(ts: Vec<(&'static str, Vec<i32>)>) -> Vec<&'static str> {
            ts.into_iter().map(|t| t.0).collect()
        }
        assert_eq!((names(wave), names(rest)), (vec!["a", "c", "d"], vec!["b"]));
    }

    #[test]
    fn a_refused_permission_is_denied_not_about_the_data() {
        // WHEN DynamoDB answers that the function's role may not make the request
        let classified = TableError::classify("likes", answered(400, "AccessDeniedException"));
        // THEN no record is blamed: it is not retried here, and not quarantined either
        let Attempt::GiveUp(error) = classified else {
            panic!("a refused permission does not clear within an invocation");
        };
        assert!(matches!(error, TableError::Denied { .. }), "{error:?}");
        assert!(!error.is_about_data());
        assert!(error.to_string().contains("role"), "{error}");
        assert!(TableError::rejected("likes", "ValidationException").is_about_data());
        // AND expired or refused credentials name the caller, never the data
        for code in ["ExpiredTokenException", "RequestExpired", "NotAuthorized"] {
            assert!(matches!(
                TableError::classify("likes", answered(400, code)),
                Attempt::GiveUp(TableError::Denied { .. })
            ));
        }
        // AND a 403 is a refusal whatever its body (the emulator's IAM answers in XML)
        assert!(matches!(
            TableError::classify("likes", answered(403, "unreadable")),
            Attempt::GiveUp(TableError::Denied { .. })
        ));
    }
}
